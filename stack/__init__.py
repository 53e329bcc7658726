"""Runs the three processes (Rasa server, action server, Telegram gateway) for development,
tests and benchmarks. Only the launcher lives here; it imports no project code."""
