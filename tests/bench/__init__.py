"""The benchmarks, run with tiny counts."""
