"""Benchmarks, run by hand; figures go to bench/RESULTS.md."""
