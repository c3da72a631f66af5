"""Importing this module registers every erasure method."""

from tracer.unlearning import filter, finetune, gradient_ascent, npo, rmu, tracer  # noqa: F401
