"""Shared builders of tiny test worlds (fixtures that use them live in ``tests/conftest.py``)."""
