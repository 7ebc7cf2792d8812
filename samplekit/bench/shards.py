"""Benchmark sweeps over torch.distributed (``torchrun --nproc-per-node N -m samplekit bench ...``).

Cells are dealt round-robin by their position in the (deterministic) grid: cell i goes to rank i mod N,
whatever is already done, so a rerun with the same N gives every rank the same cells (resumable per rank).
Rank r appends to its own shard ``results.rank<r>.jsonl`` under its own lock; a single process writes
``results.jsonl``.  Every reader merges all of them, so a sweep can be finished or reported by any number
of processes, and the table is the one a single process makes (each cell's seed fixes its result).
No collective runs inside a cell (adaptive solvers spend different NFE per rank): one barrier at the end,
after which rank 0 writes the report.
"""

from __future__ import annotations

from pathlib import Path

from samplekit.bench.store import ResultsStore

MAIN = "results.jsonl"


def shard_name(rank: int, size: int) -> str:
    return MAIN if size == 1 else f"results.rank{rank}.jsonl"


def result_files(out: Path) -> list[Path]:
    """results.jsonl, then every rank's shard in rank order."""
    shards = sorted(out.glob("results.rank*.jsonl"), key=lambda p: int(p.stem.rsplit("rank", 1)[1] or 0))
    return [p for p in [out / MAIN, *shards] if p.is_file()]


def load_merged(out: Path, skip: Path | None = None) -> tuple[dict, list[str]]:
    """Records of every results file in ``out`` (read-only; ``skip`` one loaded elsewhere) and their problems."""
    records, problems = {}, []
    for path in result_files(out):
        if skip is not None and path.resolve() == skip.resolve():
            continue
        store = ResultsStore(path)
        records.update(store.load())
        problems += store.problems()
    return records, problems


def deal(cells: list, rank: int, size: int) -> list:
    """This rank's cells: every size-th one starting at rank."""
    return cells[rank::size]
