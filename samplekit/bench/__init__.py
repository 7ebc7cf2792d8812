"""The benchmark engine: metrics, the quality-per-NFE harness, and ``load_results``."""

from samplekit.bench.results import load_results

__all__ = ["load_results"]
