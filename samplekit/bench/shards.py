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

import datetime
import os
from pathlib import Path

from samplekit.bench.store import ResultsStore

MAIN = "results.jsonl"


def world() -> tuple[int, int]:
    """(rank, world size): from torch.distributed under torchrun (gloo on CPU, nccl with CUDA), else (0, 1)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(hours=12))
    return dist.get_rank(), dist.get_world_size()


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()


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
