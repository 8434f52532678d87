"""Benchmarks behind ``avatar bench``."""
