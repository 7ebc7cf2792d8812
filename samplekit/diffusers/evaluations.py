"""Where a fixed-step solver calls the network on a grid: a dry run of samplekit's own loop.

For a fixed-step solver the times of its network calls on a grid ts depend on ts and its options only,
never on x or on the network's outputs (a step t0 -> t1 evaluates at times fixed by (t0, t1) and the
solver's coefficients).  So one run of ``samplekit.sampling.integrate`` (plus the final denoise if the
solver has ``denoise_final``) with a network that records its time argument and returns zeros, on a
one-number sample, lists them: t^(0), t^(1), ..., t^(K-1), with the grid step each call belongs to.  A
diffusers pipeline that calls the network once per entry of ``scheduler.timesteps`` then makes exactly
these K calls, in this order.

A solver whose first call is not at x_T itself (annealed Langevin rescales x first, EDM Heun with churn
adds noise first) cannot take the pipeline's first output, which is at x_T: its list starts with one
leading entry at ts[0] (``leading``, grid step -1) whose output is not used; the pipeline then evaluates
at the x the solver asks for.  (Detected in the dry run, which starts from x_T = 1.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from samplekit.noise import NoiseSource
from samplekit.sampling import integrate
from samplekit.score import ScoreModel
from samplekit.sde import SDE
from samplekit.solver import Solver

Tensor = torch.Tensor


def walk(solver: Solver, model: ScoreModel, x: Tensor, ts: Tensor, noise: NoiseSource, callback=None) -> Tensor:
    """samplekit's core loop on grid ts (``sampling.integrate``), then the solver's final denoise at ts[-1] if
    it has ``denoise_final``: what ``sk.sample`` runs for a fixed-step solver from x."""
    x = integrate(solver, model, x, ts, noise, progress=False, callback=callback)
    if solver.denoise_final:
        x = model.denoise(x, ts[-1])
    return x


@dataclass(frozen=True)
class Evaluations:
    """The network calls of one solver run: their times (float64) and, for each, its grid step
    (``len(ts) - 1`` for the final denoise; -1 for a leading entry, see the module doc)."""

    times: Tensor
    steps: tuple[int, ...]
    leading: bool = False

    def first_of_step(self, step: int) -> int | None:
        """The index of the first call made in grid step ``step`` (None if that step calls nothing)."""
        return next((k for k, s in enumerate(self.steps) if s == step), None)


def record_evaluations(solver: Solver, sde: SDE, parametrization: str, ts: Tensor) -> Evaluations:
    """The calls ``solver`` makes on grid ``ts`` (run on a zero network and a one-number sample, float64)."""
    times: list[float] = []
    steps: list[int] = []
    current = [0]
    x_T = torch.ones(1, 1, dtype=torch.float64)
    first_at_x_T: list[bool] = []

    def net(x, t):
        if not first_at_x_T:
            first_at_x_T.append(torch.allclose(x, x_T, rtol=1e-12, atol=0.0))  # x / alpha * alpha: rounding only
        times.append(float(t.reshape(-1)[0]))
        steps.append(current[0])
        return torch.zeros_like(x)

    def advance(info) -> None:
        current[0] = info.step + 1

    model = ScoreModel(net, sde, (1,), parametrization, name="recorder")
    ts = ts.to(torch.float64)
    with torch.no_grad():
        walk(solver, model, x_T.clone(), ts, NoiseSource(0, 1), advance)
    if first_at_x_T and not first_at_x_T[0]:
        return Evaluations(torch.tensor([float(ts[0]), *times], dtype=torch.float64), (-1, *steps), True)
    return Evaluations(torch.tensor(times, dtype=torch.float64), tuple(steps))
