"""``emolens bench``: speed and quality figures written to ``benchmarks/*.md``, never asserted in tests.

``timing`` holds the one timing helper (median and p95); each other module is one benchmark.
"""
