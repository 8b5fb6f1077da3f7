"""Helpers shared by the benchmark scripts (not benchmarks themselves: `make bench-all` runs benchmarks/*.py only)."""
