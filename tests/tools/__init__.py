"""Helpers for the tests that run real tools against the mount (tests/test_tools_*.py)."""
