"""Benchmarks of a real session: scripts/bench runs them, scripts/test does not."""
