"""Benchmark sweeps over torch.distributed (``torchrun --nproc-per-node N -m samplekit bench ...``).

Cells are dealt round-robin by their position in the (deterministic) grid: cell i goes to rank i mod N,
whatever is already done, so a rerun with the same N gives every rank the same cells (resumable per rank).
Rank r appends to its own shard ``results.rank<r>.jsonl`` under its own lock; a single process writes
``results.jsonl``.  Every reader merges all of them, so a sweep can be finished or reported by any number
of processes, and the table is the one a single process makes (each cell's seed fixes its result).
No collective runs inside a cell (adaptive solvers spend different NFE per rank): one barrier at the end,
then the counts are summed over ranks (``total``) and rank 0 writes the report.  Rank 0's progress bar
shows every rank's cells (``ShardWatch`` reads the other shards' new lines); the other ranks show none.
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


def _group_joined() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def agree(value):
    """Rank 0's ``value`` on every rank (e.g. the name of a fresh output directory); itself in one process."""
    if not _group_joined():
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def total(counts: dict[str, int]) -> dict[str, int]:
    """The sum over ranks of each rank's counts (the same keys on every rank); itself in one process."""
    if not _group_joined():
        return dict(counts)
    import torch
    import torch.distributed as dist

    keys = sorted(counts)
    summed = torch.tensor([int(counts[k]) for k in keys], dtype=torch.int64)
    if dist.get_backend() == "nccl":
        summed = summed.cuda()
    dist.all_reduce(summed)
    return dict(zip(keys, (int(v) for v in summed.tolist())))


class ShardWatch:
    """Counts the records other ranks append to their shards (one line each) since it was made: what rank
    0's progress bar adds to its own cells, so one bar shows the whole run."""

    def __init__(self, paths: list[Path]) -> None:
        self.offsets = {p: (p.stat().st_size if p.is_file() else 0) for p in paths}
        self.seen = 0

    def new_records(self) -> int:
        for path, offset in self.offsets.items():
            if not path.is_file():
                continue
            with open(path, "rb") as fh:
                fh.seek(offset)
                chunk = fh.read()
            self.seen += chunk.count(b"\n")
            self.offsets[path] = offset + len(chunk)
        return self.seen
