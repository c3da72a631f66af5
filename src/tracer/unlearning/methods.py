"""Importing this module registers every erasure method."""

from tracer.unlearning import filter, finetune, gradient_ascent, npo, retrain, rmu, tracer  # noqa: F401
