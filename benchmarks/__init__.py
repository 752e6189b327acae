"""Benchmarks of qr_charging: ``python -m benchmarks`` (``scripts/bench``), docs/performance.md."""
