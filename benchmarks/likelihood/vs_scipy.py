"""Likelihood NFE at a given tolerance: samplekit's integrators (torchdiffeq dopri5, samplekit's adaptive
Adams ``adams_pec`` / ``adams_pece``, its two-derivative ``hermite_pec``) against scipy's RK45, DOP853 and
LSODA on the same augmented probability-flow ODE (x, Delta), exact trace, float64; (``--seeds``) the ratios
to RK45 over 10 independent batches at 1e-5; and (``--timevars``) the time variable tried.

Every integrator gets the same right-hand side: the probability-flow drift F(x, t) of the exact
mixture score and its exact divergence (autograd), for a batch of 256 exact samples, integrated from
t_min to T at rtol = atol = tol (``hermite_pec`` also their derivatives along the flow, by autograd of the
same call: ``samplekit.likelihood._hermite_rhs``).  NFE counts right-hand-side calls (each one batched network call).
Time variables: ``t`` (the SDE's time, what ``sk.log_likelihood`` does), ``logsnr`` (u = lambda_t:
dx/du = F dt/dlambda) and ``sigma`` (u = s = sigma_t / alpha_t with the state x / alpha_t, EDM's form).
``err`` = mean |log p_est - log p_{t_min}| / d with the exact p_T in place of the prior (ODE + trace
error only).  scipy is a benchmark dependency only.

    .venv/bin/python benchmarks/likelihood/vs_scipy.py             # vs_scipy.json / vs_scipy.md (time t)
    .venv/bin/python benchmarks/likelihood/vs_scipy.py --seeds     # vs_scipy_seeds.json / .md
    .venv/bin/python benchmarks/likelihood/vs_scipy.py --timevars  # vs_scipy_timevars.json / .md

The .md files keep the hand-written finding above their marker line; the table below it is regenerated.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.integrate
import torch

import samplekit as sk
from samplekit import targets
from samplekit.adams import odeint_adams
from samplekit.hermite import odeint_hermite
from samplekit.likelihood import ADAMS, HERMITE, _hermite_rhs
from samplekit.ode import integrate
from samplekit.reverse import probability_flow_drift
from samplekit.trace import ExactTrace

HERE = Path(__file__).parent
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: recorded.py
import recorded  # noqa: E402


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


def run(name, library, method, variable, tol, n=256, seed=1000):
    mixture = TARGETS[name]()
    sde = sk.VPSDE()
    model = mixture.score_model(sde)
    x = mixture.sample(n, generator=torch.Generator().manual_seed(seed))
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
    elif method.startswith(HERMITE):  # "hermite_pec" or "hermite_pec:option=value"; time t only
        assert variable == "t", "hermite_pec's second derivatives are taken in t"
        options = dict(_option(kv) for kv in method.split(":")[1:])
        (yT, delta), _ = odeint_hermite(
            _hermite_rhs(model, ExactTrace(), None, [0]),
            (y0, torch.zeros(n, 1, dtype=torch.float64)),
            u0,
            u1,
            tol,
            tol,
            **options,
        )
        delta = delta[:, 0]
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
        **({} if seed == 1000 else {"seed": seed}),
    }


def _option(text):
    key, value = text.split("=")
    return key, float(value) if "." in value or "e" in value else int(value)


METHODS = (
    ("scipy", "RK45"),
    ("scipy", "DOP853"),
    ("scipy", "LSODA"),
    ("samplekit", "dopri5"),
    ("samplekit", "adams_pec"),
    ("samplekit", "adams_pece"),
    ("samplekit", "hermite_pec"),
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


SEED_METHODS = (("scipy", "RK45"), ("samplekit", "dopri5"), ("samplekit", "adams_pec"), ("samplekit", "hermite_pec"))


def main_seeds(seeds=range(1000, 1010), tol=1e-5, extra=()):
    """The NFE and error ratios to RK45 over independent batches of 256 points (the seed of the sample)."""
    torch.set_num_threads(1)
    rows = []
    for name in TARGETS:
        for seed in seeds:
            for library, method in SEED_METHODS + tuple(("samplekit", m) for m in extra):
                rows.append(run(name, library, method, "t", tol, seed=seed))
                print(json.dumps(rows[-1]), flush=True)
    write_seeds(rows)


MARKER = "<!-- table: written by vs_scipy.py -->\n"


def _keep_prose(path: Path, lines: list[str]) -> None:
    """Write the generated lines below the marker, keeping the hand-written finding above it."""
    text = path.read_text() if path.exists() else ""
    prose = text.split(MARKER)[0] if MARKER in text else ""
    path.write_text(prose + MARKER + "\n".join(lines) + "\n")


def write_seeds(rows, stem="vs_scipy_seeds"):
    """<stem>.json and <stem>.md: per target and method, the ratios to RK45 on the same batch, over batches."""
    (out_dir() / f"{stem}.json").write_text(json.dumps(rows, indent=1))
    key = lambda r: (r["target"], r.get("seed", 1000), r["tol"])  # noqa: E731
    rk45 = {key(r): r for r in rows if r["method"] == "RK45"}
    lines = [
        "Produced by `benchmarks/likelihood/vs_scipy.py --seeds`: per target, batches of 256 exact samples drawn with",
        "seeds 1000, 1001, ...; each method against scipy RK45 on the same batch at the same rtol = atol. VP SDE,",
        "exact trace, float64, one thread; NFE = batched right-hand-side calls; err = mean |log p_est -",
        "log p_{t_min}| / d with the exact p_T (ODE + trace error only). Ratios: method / RK45, same batch.",
        "",
        "| target | tol | method | batches | NFE mean (min-max) | RK45 NFE mean | NFE ratio mean (max) | "
        "err ratio mean (max) | batches with NFE <= 0.5x RK45 and err <= RK45's |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict = {}
    for r in rows:
        if r["method"] != "RK45":
            groups.setdefault((r["target"], r["tol"], r["method"]), []).append(r)
    for (target, tol, method), rs in groups.items():
        ref = [rk45[key(r)] for r in rs]
        nfe = [r["nfe"] for r in rs]
        nr = [r["nfe"] / q["nfe"] for r, q in zip(rs, ref)]
        er = [r["err"] / q["err"] for r, q in zip(rs, ref)]
        both = sum(a <= 0.5 and b <= 1.0 for a, b in zip(nr, er))
        lines.append(
            f"| {target} | {tol:g} | {method} | {len(rs)} | {sum(nfe) / len(nfe):.1f} ({min(nfe)}-{max(nfe)}) | "
            f"{sum(q['nfe'] for q in ref) / len(ref):.1f} | {sum(nr) / len(nr):.2f} ({max(nr):.2f}) | "
            f"{sum(er) / len(er):.2f} ({max(er):.2f}) | {both} / {len(rs)} |"
        )
    _keep_prose(out_dir() / f"{stem}.md", lines)


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
    (out_dir() / f"{stem}.json").write_text(json.dumps(rows, indent=1))
    lines = [
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
    _keep_prose(out_dir() / f"{stem}.md", lines)


def out_dir() -> Path:
    """Beside this script with --record, else out/benchmarks/likelihood/."""
    return recorded.output_dir(HERE, RECORD, "likelihood")


RECORD = "--record" in sys.argv[1:]

if __name__ == "__main__":
    sys.argv = [a for a in sys.argv if a != "--record"]
    if len(sys.argv) in (3, 4) and sys.argv[1] == "--from-log":
        write([json.loads(line) for line in open(sys.argv[2]) if line.startswith("{")], *sys.argv[3:])
    elif sys.argv[1:] == ["--timevars"]:
        main_timevars()
    elif sys.argv[1:2] == ["--seeds"]:
        main_seeds(extra=tuple(sys.argv[2:]))
    else:
        main_methods(*(a.split(",") for a in sys.argv[1:2]))
