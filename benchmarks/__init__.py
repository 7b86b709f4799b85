"""segkit benchmarks: `make bench` runs every `bench_*.py` module and writes a results table."""
