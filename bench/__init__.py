"""Benchmarks: ratios and figures measured side by side in one run (README, "Benchmarks")."""
