"""Benchmark scripts that print numbers (run them with `python -m bench.<name>`)."""
