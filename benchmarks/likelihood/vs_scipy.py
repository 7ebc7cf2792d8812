"""Likelihood NFE at a given tolerance: samplekit's integrators (torchdiffeq dopri5, samplekit's adaptive
Adams ``adams_pec`` / ``adams_pece``) against scipy's RK45, DOP853 and LSODA on the same augmented
probability-flow ODE (x, Delta), exact trace, float64; and (``--timevars``) the time variable tried.

Every integrator gets the same right-hand side: the probability-flow drift F(x, t) of the exact
mixture score and its exact divergence (autograd), for a batch of 256 exact samples, integrated from
t_min to T at rtol = atol = tol.  NFE counts right-hand-side calls (each one batched network call).
Time variables: ``t`` (the SDE's time, what ``sk.log_likelihood`` does), ``logsnr`` (u = lambda_t:
dx/du = F dt/dlambda) and ``sigma`` (u = s = sigma_t / alpha_t with the state x / alpha_t, EDM's form).
``err`` = mean |log p_est - log p_{t_min}| / d with the exact p_T in place of the prior (ODE + trace
error only).  scipy is a benchmark dependency only.

    .venv/bin/python benchmarks/likelihood/vs_scipy.py             # vs_scipy.json / vs_scipy.md (time t)
    .venv/bin/python benchmarks/likelihood/vs_scipy.py --timevars  # vs_scipy_timevars.json / .md
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import scipy.integrate
import torch

import samplekit as sk
from samplekit import targets
from samplekit.adams import odeint_adams
from samplekit.likelihood import ADAMS
from samplekit.ode import integrate
from samplekit.reverse import probability_flow_drift

HERE = Path(__file__).parent


def single2d():
    """one Gaussian, std 0.15 and 0.4 (its flow is closed-form and smooth in log-SNR)"""
    return sk.GaussianMixture(
        torch.tensor([1.0]), torch.tensor([[1.0, -0.5]]), torch.diag(torch.tensor([0.15**2, 0.4**2]))[None]
    )


TARGETS = {"ring2d": targets.ring2d, "gmm16_full": targets.gmm16_full, "single2d": single2d}


def drift_and_div(model, x, t):
    with torch.enable_grad():
        xi = x.detach().requires_grad_(True)
        drift, _ = probability_flow_drift(model, xi, t)
        div = sum(torch.autograd.grad(drift[:, i].sum(), xi, retain_graph=True)[0][:, i] for i in range(x.shape[1]))
    return drift.detach(), div.detach()


class Variable:
    """u(t) and the right-hand side in u for the state (y, Delta), y = x (t, logsnr) or x / alpha (sigma)."""

    def __init__(self, name, sde):
        self.name, self.sde = name, sde

    def span(self):
        ends = torch.tensor([self.sde.t_min, self.sde.T], dtype=torch.float64)
        if self.name == "t":
            return float(ends[0]), float(ends[1])
        lam = self.sde.log_snr(ends)
        return (
            (float(lam[0]), float(lam[1]))
            if self.name == "logsnr"
            else (float(torch.exp(-lam[0])), float(torch.exp(-lam[1])))
        )

    def t_of(self, u):
        u = torch.as_tensor(u, dtype=torch.float64)
        if self.name == "t":
            return u
        return self.sde.t_from_log_snr(u if self.name == "logsnr" else -torch.log(u))

    def rhs(self, model, u, y):
        t = self.t_of(u)
        a, s = self.sde.marginal(t)
        da, ds = self.sde.marginal_derivative(t)
        if self.name == "t":
            drift, div = drift_and_div(model, y, t)
            return drift, div
        dlam_dt = da / a - ds / s
        if self.name == "logsnr":
            dt_du = 1 / dlam_dt
            drift, div = drift_and_div(model, y, t)
            return drift * dt_du, div * dt_du
        dt_du = (-1 / u) / dlam_dt  # u = exp(-lambda)
        x = a * y
        drift, div = drift_and_div(model, x, t)
        return (drift - (da / a) * x) / a * dt_du, div * dt_du

    def to_state(self, x, t):
        return x / self.sde.marginal(torch.tensor(t, dtype=torch.float64))[0] if self.name == "sigma" else x

    def from_state(self, y, t):
        return y * self.sde.marginal(torch.tensor(t, dtype=torch.float64))[0] if self.name == "sigma" else y


def run(name, library, method, variable, tol, n=256):
    mixture = TARGETS[name]()
    sde = sk.VPSDE()
    model = mixture.score_model(sde)
    x = mixture.sample(n, generator=torch.Generator().manual_seed(1000))
    a0, s0 = sde.marginal(torch.tensor(sde.t_min, dtype=torch.float64))
    aT, sT = sde.marginal(torch.tensor(sde.T, dtype=torch.float64))
    truth = mixture.noised_log_prob(x, a0, s0)
    var = Variable(variable, sde)
    u0, u1 = var.span()
    y0 = var.to_state(x, sde.t_min)
    d = mixture.d
    nfe0 = model.nfe
    start = time.perf_counter()
    if library == "scipy":

        def f(u, z):
            dy, dd = var.rhs(model, torch.tensor(u, dtype=torch.float64), torch.as_tensor(z[: n * d].reshape(n, d)))
            return np.concatenate([dy.numpy().ravel(), dd.numpy()])

        sol = scipy.integrate.solve_ivp(
            f, (u0, u1), np.concatenate([y0.numpy().ravel(), np.zeros(n)]), method=method, rtol=tol, atol=tol
        )
        yT, delta = torch.as_tensor(sol.y[: n * d, -1].reshape(n, d)), torch.as_tensor(sol.y[n * d :, -1])
    elif method in ADAMS:
        (yT, delta), _ = odeint_adams(
            lambda u, st: var.rhs(model, u, st[0]),
            (y0, torch.zeros(n, dtype=torch.float64)),
            u0,
            u1,
            tol,
            tol,
            final_eval=ADAMS[method],
        )
    else:
        yT, delta = integrate(
            lambda u, st: var.rhs(model, u, st[0]), (y0, torch.zeros(n, dtype=torch.float64)), u0, u1, method, tol, tol
        )
    seconds = time.perf_counter() - start
    xT = var.from_state(yT, sde.T)
    err = (mixture.noised_log_prob(xT, aT, sT) + delta - truth).abs().mean().item() / d
    return {
        "target": name,
        "library": library,
        "method": method,
        "variable": variable,
        "tol": tol,
        "nfe": model.nfe - nfe0,
        "err": err,
        "seconds": round(seconds, 2),
    }


METHODS = (
    ("scipy", "RK45"),
    ("scipy", "DOP853"),
    ("scipy", "LSODA"),
    ("samplekit", "dopri5"),
    ("samplekit", "adams_pec"),
    ("samplekit", "adams_pece"),
)


def main_methods(names=tuple(TARGETS), tols=(1e-4, 1e-5, 1e-6)):
    """Time t only: the integrators side by side (what ``sk.log_likelihood(method=...)`` does)."""
    torch.set_num_threads(1)
    rows = []
    for name in names:
        for tol in tols:
            for library, method in METHODS:
                rows.append(run(name, library, method, "t", tol))
                print(json.dumps(rows[-1]), flush=True)
    write(rows, "vs_scipy")


def main_timevars():
    torch.set_num_threads(1)
    rows = []
    for name in TARGETS:
        for tol in (1e-4, 1e-5, 1e-6):
            for library, method in (
                ("scipy", "RK45"),
                ("scipy", "DOP853"),
                ("samplekit", "dopri5"),
                ("samplekit", "dopri8"),
                ("samplekit", "bosh3"),
            ):
                for variable in ("t", "logsnr", "sigma"):
                    rows.append(run(name, library, method, variable, tol))
                    print(json.dumps(rows[-1]), flush=True)
    write(rows, "vs_scipy_timevars")


def write(rows, stem="vs_scipy"):
    """<stem>.json and <stem>.md from the rows (also from a run's log: ``--from-log LOG [STEM]``)."""
    (HERE / f"{stem}.json").write_text(json.dumps(rows, indent=1))
    lines = [
        "# Likelihood NFE vs scipy RK45 / DOP853 (recorded)",
        "",
        "Produced by `benchmarks/likelihood/vs_scipy.py` (see its docstring). 256 exact samples, VP SDE, exact "
        "trace, float64, one thread. `ratio` = NFE / scipy RK45's NFE (same target, tolerance, time variable t).",
        "",
        "| target | tol | library | method | time variable | NFE | ratio to RK45 (t) | err (nats/dim) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ref = next(
            (
                q
                for q in rows
                if q["target"] == r["target"]
                and q["tol"] == r["tol"]
                and q["method"] == "RK45"
                and q["variable"] == "t"
            ),
            None,
        )
        if ref is None:
            continue
        lines.append(
            f"| {r['target']} | {r['tol']:g} | {r['library']} | {r['method']} | {r['variable']} | {r['nfe']} | "
            f"{r['nfe'] / ref['nfe']:.2f} | {r['err']:.2e} |"
        )
    (HERE / f"{stem}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    import sys

    if len(sys.argv) in (3, 4) and sys.argv[1] == "--from-log":
        write([json.loads(line) for line in open(sys.argv[2]) if line.startswith("{")], *sys.argv[3:])
    elif sys.argv[1:] == ["--timevars"]:
        main_timevars()
    else:
        main_methods(*(a.split(",") for a in sys.argv[1:2]))
