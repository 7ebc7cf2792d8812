"""Benchmark results as a table: ``samplekit.bench.load_results(out) -> pandas.DataFrame``.

One row per record of ``OUT/results.jsonl`` and of every rank's shard (solver cells, noise floors, reference
ODE solves), the cell's fields as columns, each metric as a column of its own, ``se_<metric>`` for bootstrap standard
errors, ``<stat>_mean`` / ``<stat>_sd`` / ``<stat>_n`` for per-sample statistics (``flow_error``: the
distance to the reference ODE solution; ``logp``: log p of the samples).  Read-only: a torn last line
is skipped, not cut off; incomplete records are left out (listed in ``df.attrs["problems"]``).
"""

from __future__ import annotations

from pathlib import Path

from samplekit.bench.shards import load_merged, result_files
from samplekit.bench.store import ResultsStore

FIELDS = (
    "kind",
    "target",
    "sde",
    "solver",
    "label",
    "nfe",
    "tol",
    "seed",
    "num_samples",
    "dtype",
    "status",
    "nfe_spent",
    "seconds",
    "wall_seconds",
    "plugin",
    "stochastic",
    "schedule",
    "adaptive",
    "flow_tol",
    "error",
    "reason",
)


def _flat(record: dict) -> dict:
    row = {k: record.get(k) for k in FIELDS}
    row["options"] = ",".join(f"{k}={v}" for k, v in sorted((record.get("options") or {}).items())) or None
    for name, value in (record.get("metrics") or {}).items():
        row[name] = value
    for name, value in (record.get("se") or {}).items():
        row[f"se_{name}"] = value
    for name, (mean, sd, n) in (record.get("stats") or {}).items():
        row[f"{name}_mean"], row[f"{name}_sd"], row[f"{name}_n"] = mean, sd, n
    if "expected_logp" in record:
        row["expected_logp"] = record["expected_logp"]
    return row


def load_results(out: str | Path):
    """The records of a benchmark run in ``out`` (a directory, or its results.jsonl) as a pandas DataFrame."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("load_results needs pandas: pip install 'samplekit[bench]'") from None
    path = Path(out)
    if path.is_dir():
        if not result_files(path):
            raise FileNotFoundError(f"no benchmark results in {str(path)!r}; pass the --out directory of a run")
        records, problems = load_merged(path)  # results.jsonl and every rank's shard
    elif path.is_file():
        store = ResultsStore(path)
        records, problems = store.load(), None
        problems = store.problems()
    else:
        raise FileNotFoundError(f"no benchmark results at {str(path)!r}; pass the --out directory of a run")
    df = pd.DataFrame([_flat(r) for r in records.values()])
    df.attrs["problems"] = problems
    return df
