"""Reference solutions of the model's own dynamics, for measuring a solver's error without data.

Deterministic solvers integrate the probability-flow ODE
    dx/dt = f(x, t) - g(t)^2 s(x, t) / 2,   from x_T ~ N(0, prior_std^2 I) at T down to t_min,
so their error is the per-sample distance to a high-accuracy solution of the same ODE from the same
x_T: ``ode_dopri5`` (Dormand & Prince 1980, through torchdiffeq) at a tight rtol = atol, in float64
where the network accepts it.  For an exact Gaussian-mixture target this is the exact flow, so the
distance is the pathwise error (Karras et al. 2022 measure the same "truncation error" to a fine
solve).  The error of one sample is the RMS over coordinates: e_i = |x_i - x_i^ref|_2 / sqrt(d).

Stochastic solvers sample the reverse SDE; with no data to compare against, their reference is a
large set from a fine-grid SDE solve (``reference_sde_solver`` at ``reference_sde_nfe`` steps).
"""

from __future__ import annotations

import math

import torch

from samplekit.sampling import sample
from samplekit.solver import build_solver

FLOW_SOLVER = "ode_dopri5"
FLOW_CAP = 200_000


def prior_draw(model, n: int, seed: int, dtype: torch.dtype) -> torch.Tensor:
    """x_T for ``seed``: prior_std * N(0, I) of shape (n, *model.shape), from torch.Generator(seed)."""
    g = torch.Generator().manual_seed(int(seed))
    return model.sde.prior_std * torch.randn((n, *model.shape), generator=g, dtype=dtype)


def model_dtype(model, x: torch.Tensor) -> torch.dtype:
    """float64 if the network evaluates in float64 (exact targets, most nets after .double()), else x's."""
    try:  # the whole batch: a model may bind one input per sample (labels of a guided model)
        with torch.no_grad():
            model.predict(x.double(), model.sde.T)
        return torch.float64
    except Exception:  # a network with float32 weights (any error here shows again, clearly, in the solve)
        return x.dtype


def flow_reference(registry, model, x_T: torch.Tensor, tol: float) -> dict:
    """The reference ODE solution from x_T: {"samples" (float64), "nfe_spent", "seconds", "dtype"}."""
    factory = registry.get("solver", FLOW_SOLVER).factory
    solver = build_solver(factory, FLOW_SOLVER, {"rtol": tol, "atol": tol})
    dtype = model_dtype(model, x_T)  # its probe call is not part of the solve: res.nfe counts the solve
    res = sample(model, solver=solver, nfe=FLOW_CAP, x_T=x_T.to(dtype), progress=False)
    return {
        "samples": res.samples.double(),
        "nfe_spent": int(res.nfe),
        "seconds": round(res.seconds, 4),
        "dtype": str(dtype).replace("torch.", ""),
    }


def flow_errors(samples: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """e_i = |x_i - x_i^ref|_2 / sqrt(d) per sample."""
    diff = samples.detach().double().flatten(1) - reference.flatten(1)
    return diff.norm(dim=1) / math.sqrt(diff.shape[1])


def sde_reference(registry, model, solver_name: str, nfe: int, n: int, seed: int, dtype: torch.dtype) -> torch.Tensor:
    """n samples of the model's reverse SDE from a fine grid (the distributional reference)."""
    solver = build_solver(registry.get("solver", solver_name).factory, solver_name, {})
    res = sample(model, solver=solver, nfe=nfe, num_samples=n, seed=seed, progress=False, dtype=dtype)
    return res.samples.double()
