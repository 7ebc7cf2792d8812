"""Should ``log_likelihood``'s default integrator become ``adams_pec``?  adams_pec against dopri5 off the exact
float64 VP mixtures of ``vs_scipy.md``: trained networks in float32, looser tolerances, Hutchinson trace
estimators, and the VE / EDM / rectified-flow SDEs.

Cases (one row per case, tolerance and method; NFE counted at the raw network by a counting wrapper):

  digits_unet      the shipped diffusers UNet (DiscreteVPSDE), 32 held-out digits, float32,
                   hutchinson_rademacher (the default estimator; 1 probe, seed 0), tol 1e-3, 1e-4, 1e-5
  ring2d_mlp       the shipped MLP (VP), 256 exact ring2d samples, float32, exact trace, tol 1e-3, 1e-4, 1e-5
  ring2d/gmm16_full under ve, edm, rectified_flow (exact score / denoiser), 256 samples, float64, exact trace,
                   tol 1e-5; under vp at 1e-3 (the tolerance vs_scipy.md does not cover; ring2d also at 1e-4,
                   1e-5); gmm16_full also in float32 at 1e-5; ring2d under the digits UNet's kind of SDE
                   (DiscreteVPSDE.from_vp: beta piecewise constant on 1000 steps) at 1e-3, 1e-4, 1e-5
  ring2d hutchinson ring2d (VP, exact score), 256 samples, float64, hutchinson_rademacher and
                   hutchinson_gaussian (1 probe, seed 0), tol 1e-4

Error ``err`` = mean |log p - log p_ref| / d (nats/dim) against a reference run of the same model, points and
probes (the Hutchinson probes are drawn once, in float32 for every run, and held along the trajectory, so the
log-det integrand is a deterministic function of (x, t) and ``err`` is the integrator's error alone): dopri5 in float64
(network weights cast to float64) at rtol = atol = 1e-9; for the digits UNet dopri5 at 1e-6 in float32: its
DiscreteVPSDE has a piecewise-constant beta(t) (a jump in the ODE's right-hand side at each of its 1000 grid
times), so tight tolerances cost thousands of UNet evaluations (a 1e-7 float64 run had not ended after
6 CPU-minutes, ~1,400 evaluations at 0.25 CPU-s each; the float32 UNet costs 0.07 CPU-s an evaluation).
Under the DiscreteVPSDE (ring2d) the reference restarts at the grid times where beta(t) jumps (torchdiffeq's
``jump_t``).  The reference's own error is gauged by its distance to a dopri5 run at 10x its tolerance
(``ref_check``).
For the exact targets ``err_exact`` is the distance to the exact log p_{t_min} as well (it holds the prior
mismatch and, for Hutchinson, the estimator's variance, which no integrator removes).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/likelihood/adams_default.py [--only SUBSTRING] [--force]
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/likelihood/adams_default.py --report   # table only

Rows are cached in adams_default.json (a rerun computes only missing rows); the table is written to adams_default.md
below its marker line, the hand-written finding above it is kept.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from pathlib import Path

import torch

import samplekit as sk
from samplekit import targets
from samplekit.adams import odeint_adams
from samplekit.api import get_sde, get_target
from samplekit.discrete import DiscreteVPSDE

HERE = Path(__file__).parent
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: recorded.py
import recorded  # noqa: E402

JSON = HERE / "adams_default.json"
MD = HERE / "adams_default.md"
METHODS = ("dopri5", "adams_pec")
# work-precision: adams_pec at tighter tolerances where it loses on error at 1e-5 (does it reach dopri5's error
# for fewer NFE?)
EXTRA = {
    f"{name}/{sde}/f64/exact": [(3e-6, "adams_pec"), (1e-6, "adams_pec")]
    for name in ("ring2d", "gmm16_full")
    for sde in ("ve", "edm")
}
# and whether an Adams option or the PECE form closes the gap at 1e-5 ("method:option=value")
for _sde in ("ve", "edm"):
    EXTRA[f"ring2d/{_sde}/f64/exact"] += [
        (1e-5, "adams_pec:grow=1.5"),
        (1e-5, "adams_pec:max_order=4"),
        (1e-5, "adams_pec:max_order=8"),
        (1e-5, "adams_pece"),
    ]
    EXTRA[f"gmm16_full/{_sde}/f64/exact"] += [(1e-5, "adams_pec:max_order=8")]
EXTRA["ring2d/discrete_vp/f64/exact"] = [(1e-5, "adams_pec:max_order=8"), (1e-5, "adams_pece")]


class CountingNet:
    """Wraps the raw network: counts its forward calls (the NFE), whatever ScoreModel does around it."""

    def __init__(self, net) -> None:
        self.net, self.calls = net, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.net(*args, **kwargs)


# references in float32: the digits UNet's float64 reference at a tolerance below its 1e-5 row is out of reach on
# the shared CPU (the jumps of its DiscreteVPSDE make dopri5 spend 1,045 evaluations at 1e-5 already)
REF_FLOAT32 = {"digits_unet/f32/hutch_rad"}


def grid_jumps() -> dict:
    """dopri5 options for a DiscreteVPSDE reference: restart at the 998 grid times inside (t_min, T) where beta(t)
    jumps (torchdiffeq's jump_t), so the reference steps across no discontinuity."""
    n = 1000
    return {"jump_t": torch.arange(2, n, dtype=torch.float64) / n}


REF_OPTIONS = {"ring2d/discrete_vp/f64/exact": grid_jumps}


def to_float64(net) -> None:
    """Cast a loaded network's weights to float64 in place (the loaders' wrappers hold the module)."""
    if hasattr(net, "module") and hasattr(net, "dtype"):  # diffusers wrapper: computes in its module's dtype
        net.module.double()
        net.dtype = torch.float64
    elif isinstance(getattr(net, "net", None), torch.nn.Module):
        net.net.double()
    elif isinstance(net, torch.nn.Module):
        net.double()
    else:
        raise TypeError(f"cannot cast {type(net).__name__} to float64")


class Float32Probes:
    """A registered stochastic trace estimator whose probes are drawn in float32 whatever x's dtype, then cast:
    the float64 reference then integrates the very integrand of the float32 runs (samplekit's noise source
    draws float32 and float64 Gaussians by different formulas, so a seed alone gives other probes)."""

    def __init__(self, name: str) -> None:
        from samplekit.plugins import get_registry

        self.inner = get_registry().create("trace_estimator", name)
        self.name, self.stochastic = name, self.inner.stochastic

    @property
    def n_vjp(self) -> int:
        return self.inner.n_vjp

    def check(self, d: int, n_probes: int) -> None:
        self.inner.check(d, n_probes)

    def draw_probes(self, noise, x, n_probes):
        return self.inner.draw_probes(noise, x.float(), n_probes).to(x.dtype)

    def estimate(self, out, x, probes, create_graph=False):
        return self.inner.estimate(out, x, probes, create_graph=create_graph)


def save(store) -> None:
    """Merge into the file on disk (several cases may run in parallel processes), then write."""
    disk = json.loads(JSON.read_text()) if JSON.exists() else {"refs": {}, "rows": {}}
    for part in ("refs", "rows", "stats"):
        disk.setdefault(part, {}).update(store.get(part, {}))
        store.setdefault(part, {}).update(disk[part])
    JSON.write_text(json.dumps(store, indent=1))


def cases():
    """(case id, builder, estimator, tolerances, ref tol, check tol); builder(dtype) -> (model, x, exact or None)."""

    def shipped(name, n):
        def build(dtype):
            t = get_target(name)
            model = t.model()
            if dtype == torch.float64:
                to_float64(model.net)
            return model, t.reference(n, seed=0).to(dtype), None

        return build

    def mixture(name, sde_name, n=256):
        def build(dtype):
            mix = getattr(targets, name)()
            sde = DiscreteVPSDE.from_vp(get_sde("vp")) if sde_name == "discrete_vp" else get_sde(sde_name)
            model = mix.score_model(sde)
            x = mix.sample(n, generator=torch.Generator().manual_seed(1000)).to(dtype)
            a, s = sde.marginal(sde.t_min)
            return model, x, mix.noised_log_prob(x.double(), a, s)

        return build

    yield "digits_unet/f32/hutch_rad", shipped("digits_unet", 32), "hutchinson_rademacher", (1e-3, 1e-4, 1e-5), 1e-6
    yield "ring2d_mlp/f32/exact", shipped("ring2d_mlp", 256), "exact", (1e-3, 1e-4, 1e-5), 1e-9
    for name in ("ring2d", "gmm16_full"):
        for sde_name in ("ve", "edm", "rectified_flow"):
            yield f"{name}/{sde_name}/f64/exact", mixture(name, sde_name), "exact", (1e-5,), 1e-9
        yield (
            f"{name}/vp/f64/exact",
            mixture(name, "vp"),
            "exact",
            (1e-3, 1e-4, 1e-5)[: 3 if name == "ring2d" else 1],
            1e-9,
        )
    # the digits UNet's SDE (beta piecewise constant on 1000 steps) with the exact ring2d score: the jumps alone
    yield "ring2d/discrete_vp/f64/exact", mixture("ring2d", "discrete_vp"), "exact", (1e-3, 1e-4, 1e-5), 1e-9
    yield "gmm16_full/vp/f32/exact", mixture("gmm16_full", "vp"), "exact", (1e-5,), 1e-9
    for est in ("hutchinson_rademacher", "hutchinson_gaussian"):
        yield f"ring2d/vp/f64/{est}", mixture("ring2d", "vp"), est, (1e-4,), 1e-9


def run_one(build, dtype, estimator, method, tol, options=None):
    model, x, exact = build(dtype)
    counter = CountingNet(model.net)
    model.net = counter
    start = time.perf_counter()
    if ":" in method:  # "adams_pec:grow=1.5": an Adams option
        method, option = method.split(":")
        key, value = option.split("=")
        options = {**(options or {}), key: int(value) if value.isdigit() else float(value)}
    est = estimator if estimator == "exact" else Float32Probes(estimator)
    res = sk.log_likelihood(model, x, estimator=est, method=method, rtol=tol, atol=tol, seed=0, options=options)
    seconds = time.perf_counter() - start
    if counter.calls != res.nfe:
        raise RuntimeError(f"NFE at the network {counter.calls} != result's {res.nfe}")
    return res.log_prob.double(), counter.calls, seconds, exact, x[0].numel()


def adams_stats(store) -> None:
    """Steps, rejections and orders of adams_pec on ring2d (exact score, float64, 1e-5) under the continuous VP SDE
    and its DiscreteVPSDE (beta piecewise constant on 1000 steps): where the extra evaluations go."""
    import samplekit.likelihood as lik

    seen = []

    def recording(*args, **kwargs):
        out, stats = odeint_adams(*args, **kwargs)
        seen.append(stats)
        return out, stats

    lik.odeint_adams = recording
    try:
        for name in ("ring2d/vp/f64/exact", "ring2d/discrete_vp/f64/exact"):
            build = next(b for c, b, *_ in cases() if c == name)
            model, x, _ = build(torch.float64)
            sk.log_likelihood(model, x, estimator="exact", method="adams_pec", rtol=1e-5, atol=1e-5)
            st = seen[-1]
            store.setdefault("stats", {})[name] = {
                "nfe": st["nfe"],
                "n_steps": st["n_steps"],
                "n_rejected": st["n_rejected"],
                "mean_order": sum(st["orders"]) / len(st["orders"]),
                "order_drops": sum(b < a for a, b in zip(st["orders"], st["orders"][1:])),
            }
            print(name, store["stats"][name], flush=True)
    finally:
        lik.odeint_adams = odeint_adams


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    recorded.add_flag(parser)
    parser.add_argument("--only", default="", help="run the cases whose id contains this")
    parser.add_argument("--force", action="store_true", help="recompute cached rows")
    parser.add_argument("--report", action="store_true", help="write the table from the cache, compute nothing")
    parser.add_argument("--stats", action="store_true", help="also record adams_pec's steps/rejections on ring2d")
    args = parser.parse_args()
    global JSON, MD
    out = recorded.output_dir(HERE, args.record, "likelihood")
    if out != HERE:  # a scratch run starts from the recorded cache and never writes it
        if JSON.exists() and not (out / JSON.name).exists():
            shutil.copy(JSON, out / JSON.name)
        JSON, MD = out / JSON.name, out / MD.name
    torch.set_num_threads(1)
    store = {"refs": {}, "rows": {}}
    save(store)  # loads what is on disk
    if not args.report:
        for case, build, est, tols, ref_tol in cases():
            if args.only not in case:
                continue
            dtype = torch.float32 if "/f32/" in case else torch.float64
            # the rows first (their NFE needs no reference), each with its log p; then the reference, then errors
            for tol, method in [(tol, m) for tol in tols for m in METHODS] + EXTRA.get(case, []):
                key = f"{case}|{tol:g}|{method}"
                if key in store["rows"] and not args.force:
                    continue
                lp, nfe, sec, exact, d = run_one(build, dtype, est, method, tol)
                row = {
                    "case": case,
                    "tol": tol,
                    "method": method,
                    "nfe": nfe,
                    "d": d,
                    "log_prob": lp.tolist(),
                    "err_exact": None if exact is None else (lp - exact).abs().mean().item() / d,
                    "seconds": sec,
                }
                store["rows"][key] = row
                save(store)
                print(json.dumps({k: v for k, v in row.items() if k != "log_prob"}), flush=True)
            ref = store["refs"].get(case)
            if ref is None or args.force:
                ref_dtype = torch.float32 if case in REF_FLOAT32 else torch.float64
                ref_opts = REF_OPTIONS[case]() if case in REF_OPTIONS else None
                lp, nfe, sec, exact, d = run_one(build, ref_dtype, est, "dopri5", ref_tol, ref_opts)
                same = store["rows"].get(f"{case}|{ref_tol * 10:g}|dopri5")
                if same is not None and "log_prob" in same and ref_dtype == dtype:  # the check run is a row
                    lp_check = torch.tensor(same["log_prob"], dtype=torch.float64)
                else:
                    lp_check = run_one(build, ref_dtype, est, "dopri5", ref_tol * 10, ref_opts)[0]
                ref = {
                    "tol": ref_tol,
                    "dtype": str(ref_dtype).replace("torch.", "") + (" jump_t" if ref_opts else ""),
                    "nfe": nfe,
                    "seconds": sec,
                    "log_prob": lp.tolist(),
                    "d": d,
                    "ref_check": (lp - lp_check).abs().mean().item() / d,
                    "err_exact": None if exact is None else (lp - exact).abs().mean().item() / d,
                }
                store["refs"][case] = ref
                save(store)
                print(case, "ref", {k: v for k, v in ref.items() if k != "log_prob"}, flush=True)
            lp_ref = torch.tensor(ref["log_prob"], dtype=torch.float64)
            for row in store["rows"].values():
                if row["case"] == case and "log_prob" in row:
                    lp = torch.tensor(row["log_prob"], dtype=torch.float64)
                    row["err"] = (lp - lp_ref).abs().mean().item() / row["d"]
            save(store)
    if args.stats:
        adams_stats(store)
    store["env"] = {"torch": torch.__version__, "python": platform.python_version(), "threads": 1}
    save(store)
    # the prose above the marker is hand-written (the finding); the table below it is regenerated
    marker = "<!-- table: written by adams_default.py -->\n"
    prose = MD.read_text().split(marker)[0] if MD.exists() and marker in MD.read_text() else ""
    MD.write_text(prose + marker + report(store))
    print(f"wrote {MD}")


def report(store) -> str:
    order = [c for c, *_ in cases()]
    pairs = {}
    for row in store["rows"].values():
        if row["method"] in METHODS:
            pairs.setdefault((row["case"], row["tol"]), {})[row["method"]] = row
    lines = [
        "| case | tol | dopri5 NFE | adams_pec NFE | NFE ratio | dopri5 err | adams_pec err | err ratio | "
        "err_exact dopri5 / adams_pec | ref (tol dtype, NFE, ref_check) | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case, tol in sorted(pairs, key=lambda k: (order.index(k[0]) if k[0] in order else 99, -k[1])):
        p = pairs[(case, tol)]
        if set(p) != set(METHODS):
            continue
        a, b = p["dopri5"], p["adams_pec"]
        ref = store["refs"].get(case)
        nfe_ratio = b["nfe"] / a["nfe"]
        ex = "" if a["err_exact"] is None else f"{a['err_exact']:.2e} / {b['err_exact']:.2e}"
        if ref is None or "err" not in a or "err" not in b:  # the reference is not computed yet: NFE only
            verdict = "FAIL (NFE)" if b["nfe"] > a["nfe"] else "error pending"
            lines.append(
                f"| {case} | {tol:g} | {a['nfe']} | {b['nfe']} | {nfe_ratio:.2f} | – | – | – | {ex} | – | {verdict} |"
            )
            continue
        err_ratio = b["err"] / a["err"] if a["err"] > 0 else float("inf")
        ok = b["nfe"] <= a["nfe"] and err_ratio <= 1.5
        ref_txt = f"{ref['tol']:g} {ref.get('dtype', 'float64')}, {ref['nfe']}, {ref['ref_check']:.1e}"
        lines.append(
            f"| {case} | {tol:g} | {a['nfe']} | {b['nfe']} | {nfe_ratio:.2f} | {a['err']:.2e} | {b['err']:.2e} | "
            f"{err_ratio:.2f} | {ex} | {ref_txt} | "
            f"{'pass' if ok else 'FAIL'} |"
        )
    lines += [
        "",
        "Where adams_pec fails: every run of the case, by NFE (tighter tolerances, `method:option=value` an Adams "
        "option, the PECE form):",
        "",
        "| case | method | tol | NFE | err |",
        "|---|---|---|---|---|",
    ]
    for case in EXTRA:
        rows = sorted((r for r in store["rows"].values() if r["case"] == case and "err" in r), key=lambda r: r["nfe"])
        lines += [f"| {case} | {r['method']} | {r['tol']:g} | {r['nfe']} | {r['err']:.2e} |" for r in rows]
    if store.get("stats"):
        lines += [
            "",
            "adams_pec's steps on ring2d at 1e-5 (exact score, float64; `--stats`):",
            "",
            "| case | NFE | accepted steps | rejected | mean order | order drops |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {c} | {v['nfe']} | {v['n_steps']} | {v['n_rejected']} | {v['mean_order']:.2f} | {v['order_drops']} |"
            for c, v in store["stats"].items()
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
