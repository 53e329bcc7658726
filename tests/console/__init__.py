"""Helpers shared by the console tests (tests/test_console_*.py)."""
