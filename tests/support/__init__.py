"""Test helpers that stand in for external services (importable by tests and subprocesses)."""
