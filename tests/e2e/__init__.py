"""End-to-end tests: the whole app under ``python -m devhost`` in a subprocess."""
