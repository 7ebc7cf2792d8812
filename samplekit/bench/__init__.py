"""The benchmark engine: metrics and the quality-per-NFE harness."""
