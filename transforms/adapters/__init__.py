"""Adapters: each module puts one client library (or in-process stand-in) behind a port of the domain.

Only the composition root (`transforms/composition.py`) builds them; the domain never imports this package
(an import-linter contract in `pyproject.toml` holds it so).
"""
