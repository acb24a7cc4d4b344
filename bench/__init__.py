"""Benchmarks: ``make bench`` (bench/run.py) prints one table; each module also runs alone."""
