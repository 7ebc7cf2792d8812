"""Likelihood benchmark: error vs NFE vs tolerance, per trace estimator and per torchdiffeq method.

Exact Gaussian-mixture targets (ring2d, gmm16_full) under the VP SDE with their exact score, so
the error is measured against the exact log p_{t_min}(x) (what the probability-flow ODE
computes).  Columns:

  err        mean |log p_est - log p_{t_min}| / d (nats/dim), the prior mismatch included;
  ode_err    the same with log p_T(x_T) in place of the N(0, I) prior (ODE + trace error only);
  bias       mean (log p_est - log p_{t_min}) / d;
  nfe        network forward calls (model.nfe) for the whole batch; n_vjp the backward passes;
  s/1k       wall seconds per 1,000 points (one thread, float64).

    .venv/bin/python benchmarks/likelihood/run.py            # full grid (a few minutes)
    .venv/bin/python benchmarks/likelihood/run.py --quick    # a smoke run
Writes results.json and results.md next to this file.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

import samplekit as sk
from samplekit import targets

HERE = Path(__file__).parent
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: recorded.py
import recorded  # noqa: E402

ADAPTIVE = ("dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun")
FIXED = ("euler", "midpoint", "rk4")
ESTIMATORS = ("exact", "hutchinson_rademacher", "hutchinson_gaussian")


def one_run(name, estimator, method, tol=None, steps=None, n=256, n_probes=1, seed=0):
    mixture = getattr(targets, name)()
    sde = sk.VPSDE()
    model = mixture.score_model(sde)
    x = mixture.sample(n, generator=torch.Generator().manual_seed(1000 + seed))
    options = None
    if steps is not None:
        options = {"step_size": (sde.T - sde.t_min) / steps}
    kw = dict(rtol=tol, atol=tol) if tol is not None else {}
    res = sk.log_likelihood(
        model, x, estimator=estimator, method=method, n_probes=n_probes, seed=seed, options=options, **kw
    )
    a, s = sde.marginal(sde.t_min)
    truth = mixture.noised_log_prob(x, a, s)
    aT, sT = sde.marginal(sde.T)
    mismatch = sde.prior_log_prob(res.latent) - mixture.noised_log_prob(res.latent, aT, sT)
    d = mixture.d
    diff = res.log_prob - truth
    row = {
        "target": name,
        "d": d,
        "estimator": estimator,
        "method": method,
        "tol": tol,
        "steps": steps,
        "n": n,
        "n_probes": n_probes,
        "nfe": res.nfe,
        "n_vjp": res.n_vjp,
        "err": diff.abs().mean().item() / d,
        "ode_err": (diff - mismatch).abs().mean().item() / d,
        "bias": diff.mean().item() / d,
        "mismatch": mismatch.mean().item() / d,
        "seconds": res.seconds,
        "s_per_1k": 1000 * res.seconds / n,
    }
    if res.stderr is not None:
        row["stderr_mean"] = res.stderr.mean().item()
    return row


def grid(quick: bool):
    tols = (1e-3, 1e-5) if quick else (1e-3, 1e-4, 1e-5, 1e-6, 1e-7)
    steps = (16,) if quick else (16, 64, 256)
    methods = ("dopri5",) if quick else ADAPTIVE
    for name in ("ring2d", "gmm16_full"):
        for est in ESTIMATORS:
            for method in methods:
                for tol in tols:
                    yield dict(name=name, estimator=est, method=method, tol=tol)
            for method in ("rk4",) if quick else FIXED:
                for st in steps:
                    yield dict(name=name, estimator=est, method=method, steps=st)
        # more probes: the variance falls as 1/P, the backward passes grow as P
        for est in ESTIMATORS[1:]:
            for p in (4,) if quick else (4, 16):
                yield dict(name=name, estimator=est, method="dopri5", tol=1e-5, n_probes=p)


def timing(quick: bool):
    """Seconds per 1,000 points at the default settings (dopri5, rtol = atol = 1e-5, one probe)."""
    for name in ("ring2d", "gmm16_full"):
        for est in ESTIMATORS:
            yield dict(name=name, estimator=est, method="dopri5", tol=1e-5, n=200 if quick else 1000)


def fmt(v, spec):
    return "" if v is None else format(v, spec)


def table(rows):
    head = (
        "| target | estimator | method | tol / steps | probes | NFE | VJPs | err (nats/dim) | ODE+trace err "
        "| bias | s / 1k pts |\n|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        ctl = f"tol {r['tol']:g}" if r["tol"] is not None else f"{r['steps']} steps"
        lines.append(
            f"| {r['target']} | {r['estimator']} | {r['method']} | {ctl} | {r['n_probes']} | {r['nfe']} | "
            f"{r['n_vjp']} | {r['err']:.2e} | {r['ode_err']:.2e} | {r['bias']:+.1e} | {r['s_per_1k']:.2f} |"
        )
    return head + "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None, help="output directory (default: see --record)")
    recorded.add_flag(parser)
    args = parser.parse_args()
    args.out = args.out or str(recorded.output_dir(HERE, args.record, "likelihood"))
    torch.set_num_threads(1)
    started = time.time()
    rows, timings = [], []
    one_run("ring2d", "exact", "dopri5", tol=1e-3, n=16)  # warm-up (first-call overheads)
    for spec in grid(args.quick):
        rows.append(one_run(**spec))
        print(json.dumps(rows[-1]), flush=True)
    for spec in timing(args.quick):
        timings.append(one_run(**spec))
        print(json.dumps(timings[-1]), flush=True)
    env = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "threads": 1,
        "dtype": "float64",
        "sde": "vp (beta 0.1..20, t_min 1e-3)",
        "wall_seconds": round(time.time() - started, 1),
        "quick": args.quick,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"env": env, "grid": rows, "timing": timings}, indent=1))
    md = [
        "# Likelihood benchmark: recorded results",
        "",
        f"Produced by `benchmarks/likelihood/run.py{' --quick' if args.quick else ''}`; environment: "
        + ", ".join(f"{k} {v}" for k, v in env.items())
        + ".",
        "",
        "Errors are against the exact log p_{t_min} of the mixture; `err` includes the prior mismatch at T, "
        "`ODE+trace err` replaces the N(0, I) prior by the exact p_T. NFE = network forward calls for the "
        "whole batch of n points (256 in the grid); VJPs = backward passes of the trace estimator.",
        "",
        "## Seconds per 1,000 points (dopri5, rtol = atol = 1e-5, one probe)",
        "",
        table(timings),
        "## Error vs NFE vs tolerance, per estimator and method",
        "",
        table(rows),
    ]
    (out / "results.md").write_text("\n".join(md))
    print(f"wrote {out / 'results.md'}")


if __name__ == "__main__":
    main()
