"""Benchmarks (run as scripts, e.g. `python bench/store.py`)."""
