"""Speed benchmarks of quanta against plain DuckDB baselines: ``python -m benchmarks``."""
