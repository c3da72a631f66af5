"""Attacks that test whether an erasure holds (docs/method.md, "Attacks").

Each attack starts from an artifact on disk and never changes it: the relearning curve (a few forget
examples, several step counts), benign relearning (a scheduled refresh on retain data only),
restore-codes (the erased weights under the parent's semantic IDs) and a linear probe on the user
representation. :func:`tracer.attacks.suite.run_attack_suite` runs them all; Retrain under the same
attacks is the reference.
"""
