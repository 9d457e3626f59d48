"""Benchmarks: `python -m benchmarks` runs the `main()` of every benchmarks/bench_*.py module."""
