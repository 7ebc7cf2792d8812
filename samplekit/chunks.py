"""Big sample sets in bounded memory: samples drawn in chunks, each chunk on disk once finished.

``sk.sample(..., batch_size=k)`` calls ``sample_in_chunks``: samples [a, b) are drawn by one ``sample`` call
on ``model.select(slice(a, b))`` (per-sample network inputs follow their samples), with the seeds,
``x_T`` and ``x_start`` rows of [a, b).  With one seed per sample (seed S + i for sample i), sample i is
the same whatever the chunking; with one int seed, chunk k draws from seed + k.

``ChunkDir`` keeps a run's chunks under ``DIR/chunks/``: ``<a>-<b>.npz`` written through ``atomic.atomic_write``
(a killed run leaves whole chunks or none; no symlink is followed), and ``index.json``, everything that
determines the run's samples (``run_settings``: the model's weights and the digest of the model with its
conditioning and guidance, parametrization, SDE, solver and options, grid, init, dtype, seeds), so a rerun
into DIR reuses only chunks of the same run and any other is refused naming what differs.  A chunk that does
not read back whole (truncated, damaged) is drawn again.  ``merge`` writes ``DIR/samples.npz`` (all chunks in
sample order) and removes the chunks.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import torch
from tqdm.auto import tqdm

from samplekit.atomic import atomic_write
from samplekit.checks import check_sample_args, positive_int
from samplekit.errors import InvalidArgumentError, OutputError

Tensor = torch.Tensor
INDEX = "index.json"


def chunk_ranges(start: int, stop: int, batch_size: int) -> list[tuple[int, int]]:
    """[start, stop) cut into consecutive ranges of at most batch_size samples."""
    return [(a, min(a + batch_size, stop)) for a in range(start, stop, batch_size)]


def chunk_seed(seed, k: int, a: int, b: int):
    """The seed of chunk k = samples [a, b): their own seeds (a list), or seed + k (an int)."""
    return list(seed[a:b]) if isinstance(seed, (list, tuple)) else int(seed) + k


def _rows(value, a: int, b: int):
    return None if value is None else value[a:b]


def sample_in_chunks(
    model,
    batch_size: int,
    *,
    num_samples=None,
    seed=0,
    progress=True,
    x_T=None,
    x_start=None,
    dtype=None,
    nfe=None,
    **kwargs,
):
    """``sample`` in chunks of ``batch_size`` (see the module docstring); the result holds every sample.

    Progress shows samples done / total and samples per second.  ``res.nfe`` is the network calls along
    one sample's path (the most any chunk spent); ``res.seconds`` the wall time of all chunks."""
    from samplekit.sampling import sample

    batch_size = positive_int(batch_size, "batch_size", "a positive number of samples drawn at a time")
    nfe, num_samples, seed, dtype = check_sample_args(nfe, num_samples, seed, dtype, x_T, x_start)
    seed = list(seed) if isinstance(seed, (list, tuple)) else seed
    results, start = [], time.perf_counter()
    bar = tqdm(total=num_samples, unit="sample", desc="samples", disable=not progress, leave=False)
    for k, (a, b) in enumerate(chunk_ranges(0, num_samples, batch_size)):
        results.append(
            sample(
                model.select(slice(a, b)),
                num_samples=b - a,
                seed=chunk_seed(seed, k, a, b),
                progress=False,
                x_T=_rows(x_T, a, b),
                x_start=_rows(x_start, a, b),
                dtype=dtype,
                nfe=nfe,
                **kwargs,
            )
        )
        bar.update(b - a)
    bar.close()
    res = results[0]
    res.samples = torch.cat([r.samples for r in results])
    res.nfe = max(r.nfe for r in results)
    res.seconds = time.perf_counter() - start
    if res.decoded is not None:
        res.decoded = torch.cat([cast(Tensor, r.decoded) for r in results])  # every chunk decodes alike
    return res


class ChunkDir:
    """A run's chunks under DIR/chunks (atomic files + an index of the run's settings)."""

    def __init__(self, out: str | os.PathLike, settings: dict) -> None:
        self.out = Path(out)
        self.dir = self.out / "chunks"
        self.settings = json.loads(json.dumps(settings))  # as the index stores it

    def path(self, a: int, b: int) -> Path:
        return self.dir / f"{a:010d}-{b:010d}.npz"

    def open(self, force: bool = False) -> None:
        """Make DIR/chunks and its index; a rerun of the same run keeps its chunks (``force`` drops them).
        Another run's chunks are refused with the way out.  Safe to call from every rank."""
        index = self.dir / INDEX
        for place in (self.out, self.dir):
            if place.is_symlink():
                raise OutputError(
                    f"--out {str(self.out)!r}: {str(place)!r} is a symbolic link; chunks are written only into a "
                    "real directory: remove the link, or choose another --out"
                )
        if force and self.dir.exists():
            shutil.rmtree(self.dir)
        if index.exists():
            try:
                held = json.loads(index.read_text())
            except (OSError, ValueError):
                held = {"index.json": "unreadable"}
            if held != self.settings:
                changed = sorted(k for k in set(held) | set(self.settings) if held.get(k) != self.settings.get(k))
                raise OutputError(
                    f"--out {str(self.out)!r} holds the chunks of another run (it differs in "
                    f"{', '.join(changed)}); pass --force to start over, or choose another --out"
                )
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.settings, indent=1, sort_keys=True).encode()
        try:
            atomic_write(index, lambda f: f.write(text))
        except OutputError:  # another rank wrote it first
            if json.loads(index.read_text()) != self.settings:
                raise

    def done(self, a: int, b: int) -> bool:
        """Chunk [a, b) is on disk and reads back whole; a damaged one is removed (and drawn again)."""
        import numpy as np

        path = self.path(a, b)
        if not path.is_file():
            return False
        try:
            with np.load(path) as data:
                whole = data["samples"].shape[0] == b - a and int(data["nfe"]) >= 0
        except Exception:  # noqa: BLE001  (any failure to read it back: truncated, not a zip, a missing key)
            whole = False
        if not whole:
            path.unlink()
        return whole

    def write(self, a: int, b: int, samples: Tensor, nfe: int) -> Path:
        import numpy as np

        array = samples.detach().cpu().numpy()  # after the solve: the chunk's one copy to the host
        return atomic_write(self.path(a, b), lambda f: np.savez(f, samples=array, nfe=nfe))

    def merge(
        self, num_samples: int, ranges: Sequence[tuple[int, int]], path: Path, force: bool = False, **extras
    ) -> Path:
        """DIR/samples.npz from the chunks ``ranges`` (covering [0, num_samples) in order); then the chunks go."""
        import numpy as np

        ranges = list(ranges)
        if (
            not ranges
            or ranges[0][0] != 0
            or ranges[-1][1] != num_samples
            or any(r1[0] != r0[1] for r0, r1 in zip(ranges, ranges[1:]))
        ):
            raise InvalidArgumentError(f"chunks {list(ranges)} do not cover samples [0, {num_samples}) in order")
        parts, nfe = [], 0
        for a, b in ranges:
            with np.load(self.path(a, b)) as data:
                parts.append(data["samples"])
                nfe = max(nfe, int(data["nfe"]))
        samples = np.concatenate(parts)
        atomic_write(path, lambda f: np.savez(f, samples=samples, nfe=nfe, **extras), replace=force)
        shutil.rmtree(self.dir, ignore_errors=True)
        return path


def sample_to_dir(run, out: Path, label: str, force: bool = False, progress: bool = True, **record):
    """A CLI run (``cli.runs.SamplingRun``) written chunk by chunk into ``out``, sharded over torchrun ranks.

    Rank r of N draws samples ``distributed.shard(n, r, N)`` in chunks of ``--batch-size``, skipping chunks
    already on disk (a rerun after a kill resumes); under torchrun every sample has its own seed S + i,
    so the merged set equals a single process's with --per-sample-seeds.  After one barrier rank 0 merges
    ``out/samples.npz`` (with ``record`` beside the samples).  Returns (path written or None, seconds)."""
    from samplekit import distributed
    from samplekit.sampling import sample

    rank, size = distributed.world()
    n, cond = run.num_samples, run.cond
    if size > 1 and not isinstance(run.seed, list):
        run.seed = list(range(run.seed, run.seed + n))  # sharded: sample i is drawn with seed S + i
    seed, batch = run.seed, run.batch_size or n
    solver_name = getattr(cond.solver, "name", cond.solver)
    plan = [chunk_ranges(*distributed.shard(n, r, size), batch) for r in range(size)]
    if (size > 1 or len(plan[0]) > 1) and not isinstance(cond.solver, str):
        raise InvalidArgumentError(
            "this conditioned run cannot be split into chunks or shards (its wrappers hold "
            "per-sample state); drop --batch-size and run one process"
        )
    store = ChunkDir(out, run_settings(run, label, batch, size, record))
    if rank == 0:
        store.open(force)
    distributed.barrier()
    if rank != 0:
        store.open(False)
    common = dict(solver=cond.solver, nfe=run.nfe, **cond.solver_options, **run.kwargs)
    where = distributed.device()
    if where.type != "cpu" and isinstance(cond.model.net, torch.nn.Module):  # a network: run it on this rank's GPU
        cond.model.net.to(where)
        common["device"] = where
        if common.get("x_start") is not None:
            common["x_start"] = common["x_start"].to(where)
    offset = sum(len(p) for p in plan[:rank])  # global chunk index (an int seed gives chunk k seed + k)
    mine = plan[rank]
    start = time.perf_counter()
    bar = tqdm(
        total=sum(b - a for a, b in mine),
        unit="sample",
        desc=f"rank {rank}" if size > 1 else "samples",
        disable=not progress,
        leave=False,
    )
    for k, (a, b) in enumerate(mine):
        if not store.done(a, b):
            kwargs = dict(common)
            if kwargs.get("x_start") is not None:
                kwargs["x_start"] = kwargs["x_start"][a:b]
            res = sample(
                cond.model.select(slice(a, b)),
                num_samples=b - a,
                seed=chunk_seed(seed, offset + k, a, b),
                progress=False,
                **kwargs,
            )
            store.write(a, b, res.samples, res.nfe)
        bar.update(b - a)
    bar.close()
    distributed.barrier()  # every rank's chunks are on disk
    path = None
    if rank == 0:
        path = store.merge(
            n, [r for p in plan for r in p], out / "samples.npz", force=force, solver=solver_name, seed=seed, **record
        )
    distributed.barrier()
    distributed.finish()
    return path, time.perf_counter() - start


def run_settings(run, label: str, batch: int, world_size: int, record: dict) -> dict:
    """Everything that determines a CLI run's samples, as the chunk index stores it (JSON): readable values
    where short (names, numbers), content digests (``fingerprint``) for weights, arrays and wrapped models."""
    import numpy as np

    from samplekit.fingerprint import digest, weights_digest

    cond, kwargs = run.cond, run.kwargs
    model = cond.model
    seed = run.seed

    def shown(value):
        if isinstance(value, (np.ndarray, torch.Tensor)) or isinstance(value, (list, tuple)) and len(value) > 8:
            return "sha256:" + digest(value)[:16]
        return value if isinstance(value, (bool, int, float, str, type(None))) else repr(value)

    x_start = kwargs.get("x_start")
    settings = {
        "target": label,
        "model weights": weights_digest(model),
        "model, conditioning and guidance": digest(model),
        "parametrization": str(getattr(model, "parametrization", "wrapped")),
        "sde": repr(getattr(model, "sde", None)),
        "shape": list(getattr(model, "shape", ())),
        "solver": getattr(cond.solver, "name", cond.solver),
        "solver state": digest(cond.solver),
        "solver options": repr(sorted(cond.solver_options.items())),
        "nfe": run.nfe,
        "num_samples": run.num_samples,
        "seed": seed if isinstance(seed, int) else f"{seed[0]}.. per-sample, sha256:{digest(list(seed))[:16]}",
        "batch_size": batch,
        "world_size": world_size,
        "grid (--ts)": shown(kwargs.get("ts")),
        "init (--init)": shown(x_start),
        "t_start (--strength)": kwargs.get("t_start"),
        "dtype": str(kwargs.get("dtype") or (x_start.dtype if x_start is not None else torch.float32)),
    }
    settings.update({f"--{key}": shown(value) for key, value in record.items() if key not in ("target", "sde")})
    return json.loads(json.dumps(settings))


def cli_sample_to_dir(run, samples_path: Path, label: str, sde_name: str, force: bool, grid_path, extras: dict):
    """``samplekit sample --out DIR``: ``sample_to_dir`` then, on rank 0, the report line and the PNG grid."""
    import click
    import numpy as np

    path, seconds = sample_to_dir(run, samples_path.parent, label, force=force, target=label, sde=sde_name, **extras)
    if path is None:
        return
    with np.load(path) as data:
        samples, nfe, solver = data["samples"], int(data["nfe"]), str(data["solver"])
    click.echo(f"wrote {len(samples)} samples of {label} ({sde_name}, {solver}, {nfe} NFE, {seconds:.2f} s) to {path}")
    if grid_path is not None:
        from samplekit.io.images import save_image_grid

        x = torch.from_numpy(samples[:100])
        decoder = getattr(run.cond.model, "decoder", None)
        if decoder is not None:
            with torch.no_grad():
                x = decoder(x)
        click.echo(f"wrote a grid of {len(x)} images to {save_image_grid(grid_path, x)}")
