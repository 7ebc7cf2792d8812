"""The shipped flow-matching digits model (target ``digits_flow``, plugin samplekit_models) in the flow
benchmark: every registered solver and diffusers' flow schedulers on the same trained network.

Each solver on its default grid, NFE up to ``MAX_NFE``, adaptive ones at rtol = atol = 1e-3, diffusers at
shift 1 (cost: the UNet is ~1000 times an exact-mixture call).  Two measures per cell, from the same
standard-normal x_T for every sampler (common random numbers):
* ``path_err``: the RMS distance per sample to the network's own probability-flow ODE solution from the
  same x_T (``ode_dopri5`` at rtol = atol = 1e-5 in float64, ``samplekit.bench.flow``), i.e. the solver's
  integration error on this model (deterministic samplers; a stochastic one is scored but follows
  another path by design);
* ``fd``: the digits Frechet distance (``digits_fd``) to held-out digits, with its data floor (held-out vs
  held-out).

diffusers' FlowMatchEuler / FlowMatchHeun get the network's velocity u(x, sigma) = eps - x0 from
``model.predict`` (the same call samplekit's solvers make), at sigma = timestep / N, and end at sigma = 0.
"""

from __future__ import annotations

import time
import warnings

import torch

from samplekit.bench.flow import flow_errors, flow_reference
from samplekit.plugins import get_registry

N_SAMPLES = 200
REFERENCE_TOL = 1e-5  # path errors of interest are 1e-2 .. 1e-1
MAX_NFE = 20  # budgets up to this (the UNet costs ~1000x an exact-mixture call)
TOLERANCES = (1e-3,)  # adaptive solvers: one tolerance
SHIFTS = (1.0,)  # diffusers' default shift only


def load_target():
    """The digits_flow target, or (None, reason) when it is not registered or its weights are absent."""
    try:
        target = get_registry().get("target", "digits_flow").factory()
        target.model()
        return target, ""
    except Exception as exc:  # not shipped in this checkout: the benchmark says so and goes on
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"


def fd_floor(seed=0):
    """The digits FD between the held-out halves at N_SAMPLES (what a perfect sampler scores)."""
    target, _ = load_target()
    fd = get_registry().get("metric", "digits_fd").factory
    return fd(target.floor_reference(N_SAMPLES, seed), target.reference(N_SAMPLES, seed))


def velocity(model, counter):
    def u(x, sigma):
        counter[0] += 1
        pred = model.predict(x, torch.full((x.shape[0],), float(sigma), dtype=x.dtype))
        return pred.eps - pred.x0

    return u


def diffusers_samples(model, cls_name, shift, n_steps, z):
    import diffusers

    counter = [0]
    u = velocity(model, counter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheduler = getattr(diffusers, cls_name)(shift=shift)
    scheduler.set_timesteps(n_steps)
    x = z.clone()
    with torch.no_grad():
        for t in scheduler.timesteps:
            x = scheduler.step(u(x, float(t) / scheduler.config.num_train_timesteps), t, x).prev_sample
    return x, counter[0]


def runs(samplekit_cells, diffusers_schedulers, shifts, budgets, seed=0):
    """Records for the digits_flow model; ``samplekit_cells(problem-like, model, budgets)`` yields
    (label, setting, budget, fn) as for the exact targets."""
    target, reason = load_target()
    if target is None:
        print(f"digits_flow skipped: {reason}", flush=True)
        return [], {"skipped": reason}
    fd = get_registry().get("metric", "digits_fd").factory
    model = target.model()
    z = torch.randn((N_SAMPLES, *model.shape), generator=torch.Generator().manual_seed(seed))
    reference = target.reference(N_SAMPLES, seed)
    floor = fd(target.floor_reference(N_SAMPLES, seed), reference)
    start = time.perf_counter()
    ode = flow_reference(get_registry(), model, z, REFERENCE_TOL)["samples"]
    info = {"fd_floor": floor, "n": N_SAMPLES, "reference_seconds": round(time.perf_counter() - start, 1)}

    def score(x, nfe):
        x = x.detach()
        return {
            "status": "ok",
            "nfe": int(nfe),
            "fd": fd(x.float(), reference),
            "path_err": float(flow_errors(x, ode).mean()),
        }

    class Problem:  # what samplekit_cells reads
        pass

    problem = Problem()
    problem.z, problem.seed = z, seed
    records = []
    for label, setting, budget, fn in samplekit_cells(problem, model, budgets):
        rec = {
            "library": "samplekit",
            "sampler": label,
            "setting": setting,
            "target": "digits_flow",
            "seed": seed,
            "budget": budget,
        }
        try:
            res = fn()
            rec.update(score(res.samples, res.nfe) if torch.isfinite(res.samples).all() else {"status": "nan"})
        except Exception as exc:  # recorded, the run goes on
            rec.update(status="error", error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        records.append(rec)
        print(rec, flush=True)
    for name, (cls_name, steps_for) in diffusers_schedulers.items():
        for shift in shifts:
            for b in budgets:
                rec = {
                    "library": "diffusers",
                    "sampler": f"{name} (shift {shift:g})",
                    "setting": "",
                    "target": "digits_flow",
                    "seed": seed,
                    "budget": b,
                }
                x, calls = diffusers_samples(model, cls_name, shift, steps_for(b), z)
                assert calls <= b, (name, b, calls)
                rec.update(score(x, calls))
                records.append(rec)
                print(rec, flush=True)
    return records, info
