"""One ``samplekit sample`` run: seeds (one, or one per sample), the optional ``--ts`` grid and
``--init/--strength`` start, and sampling in ``--batch-size`` chunks."""

from __future__ import annotations

import inspect
import time

import click

from samplekit.arrays import read_array
from samplekit.errors import InvalidArgumentError


class SamplingRun:
    """What ``sk.sample`` is called with for one command; ``sample()`` runs it (in chunks if asked)."""

    def __init__(self, cond, nfe, num_samples: int, seed: int, per_sample_seeds: bool, batch_size) -> None:
        self.cond, self.nfe, self.num_samples = cond, nfe, num_samples
        self.seed = list(range(seed, seed + num_samples)) if per_sample_seeds else seed
        self.batch_size = batch_size
        self.kwargs: dict = {}
        self.extras: dict = {}

    def seed_record(self):
        return self.seed

    # --- inputs --------------------------------------------------------------------------------
    def read_inputs(self, ts_path, init_path, strength) -> None:
        import torch

        model = self.cond.model
        if ts_path is not None:
            ts = torch.as_tensor(read_array(ts_path, "ts", what="--ts"), dtype=torch.float64)
            if ts.ndim != 1 or ts.numel() < 2:
                raise click.BadParameter(
                    f"the grid has shape {tuple(ts.shape)}; save a 1-d array of at least 2 decreasing times",
                    param_hint="--ts",
                )
            if not bool(torch.isfinite(ts).all()) or not bool((ts[1:] < ts[:-1]).all()):
                raise click.BadParameter(
                    "the grid must be finite and strictly decreasing (model times from T down)", param_hint="--ts"
                )
            self.kwargs["ts"] = ts
            self.extras["ts"] = ts.numpy()
        if init_path is not None:
            x = torch.as_tensor(read_array(init_path, "samples", what="--init"))
            shape = tuple(model.shape)
            if tuple(x.shape) == shape:
                x = x.expand(self.num_samples, *shape)
            if tuple(x.shape) != (self.num_samples, *shape):
                raise click.BadParameter(
                    f"the start samples have shape {tuple(x.shape)}; save one sample {shape} or "
                    f"-n of them ({self.num_samples}, *{shape})",
                    param_hint="--init",
                )
            if not x.is_floating_point():
                x = x.double()
            if not bool(torch.isfinite(x).all()):
                raise click.BadParameter("the start samples hold NaN/Inf", param_hint="--init")
            sde = model.sde
            t_start = float(strength) * float(sde.T)
            if t_start <= float(sde.t_min):
                raise click.BadParameter(
                    f"--strength {strength:g} gives t_start = {t_start:g}, not above the SDE's "
                    f"t_min = {float(sde.t_min):g}; raise it",
                    param_hint="--strength",
                )
            self.kwargs.update(x_start=x.to(torch.float32), t_start=t_start)
            self.extras.update(t_start=t_start, strength=float(strength))

    # --- sampling ------------------------------------------------------------------------------
    def sample(self):
        from samplekit.sampling import sample

        accepted = inspect.signature(sample).parameters
        for key in self.kwargs:
            if key not in accepted:
                raise InvalidArgumentError(f"this samplekit's sample() does not take {key}= yet; drop the option")
        cond = self.cond
        common = dict(solver=cond.solver, nfe=self.nfe, **cond.solver_options, **self.kwargs)
        size = self.batch_size
        if size is None or size >= self.num_samples:
            return sample(cond.model, num_samples=self.num_samples, seed=self.seed, **common)
        if "batch_size" in accepted:
            return sample(cond.model, num_samples=self.num_samples, seed=self.seed, batch_size=size, **common)
        return self._chunked(sample, size, common)

    def _chunked(self, sample, size: int, common: dict):
        import torch

        model = self.cond.model
        if not hasattr(model, "select") or not isinstance(self.cond.solver, str):
            raise InvalidArgumentError(
                "--batch-size cannot split this conditioned run (its wrappers hold per-sample state); drop --batch-size"
            )
        results, start = [], time.perf_counter()
        for k, a in enumerate(range(0, self.num_samples, size)):
            b = min(a + size, self.num_samples)
            seed = self.seed[a:b] if isinstance(self.seed, list) else self.seed + k
            kwargs = dict(common)
            if "x_start" in kwargs:
                kwargs["x_start"] = kwargs["x_start"][a:b]
            results.append(sample(model.select(slice(a, b)), num_samples=b - a, seed=seed, progress=False, **kwargs))
        first = results[0]
        first.samples = torch.cat([r.samples for r in results])
        first.nfe = max(r.nfe for r in results)  # evaluations along each sample's path (every chunk spends it)
        first.seconds = time.perf_counter() - start
        decoded = [d for d in (getattr(r, "decoded", None) for r in results) if d is not None]
        if len(decoded) == len(results):
            first.decoded = torch.cat(decoded)
        return first
