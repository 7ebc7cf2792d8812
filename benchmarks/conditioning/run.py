"""Conditioning benchmark: each inpainting / linear-constraint method's SW2 to the exact posterior per NFE,
and classifier / classifier-free guidance's SW2 to the exact class-conditional, against the noise floor.

    python benchmarks/conditioning/run.py [--n 2000] [--nfe 50 100 200 400 800]

Writes results.json and results.md beside this script.  Every reference is exact: the posterior
of a Gaussian-mixture prior under y = A x + tau n is a Gaussian mixture (samplekit.posterior), and
p_t(y = k | x) of a mixture is a responsibility (samplekit.guidance.mixture_classifier).  The noise
floor is the mean SW2 between independent exact sample sets of the same size.
Solvers are picked from the registry by their declared ``stochastic`` flag; if no deterministic
fixed-step solver is registered, a probability-flow Heun step defined here stands in (marked).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

import samplekit as sk
from samplekit.bench.metrics import sliced_wasserstein
from samplekit.posterior import observation_posterior
from samplekit.targets import gmm16_full, ring2d

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: recorded.py
import recorded  # noqa: E402

C = sk.conditioning
SDE = sk.VPSDE()
F64 = dict(dtype=torch.float64)


def pick_solvers():
    """The ODE and SDE solvers every method is run with (both built-in)."""
    return {"sde": "euler_maruyama", "ode": "ode_heun"}


def g(seed):
    return torch.Generator().manual_seed(seed)


def floor_and_ref(dist, n, sets=4):
    refs = [dist.sample(n, generator=g(1000 + i)) for i in range(sets)]
    return sum(sliced_wasserstein(refs[i], refs[i + 1]) for i in range(sets - 1)) / (sets - 1), refs[0]


# --- the inverse-problem cases ---------------------------------------------------------------------
def image_model(prior, shape):
    net = prior.score_model(SDE).net
    return sk.ScoreModel.from_score(lambda x, t: net(x.flatten(1), t).view_as(x), SDE, shape, name="exact")


def cases():
    out = {}
    prior = sk.GaussianMixture([1.0, 1.0], [[-3.0, -3.0], [3.0, 3.0]], [[[1, 0.95], [0.95, 1]]] * 2)
    out["two_modes_2d: inpaint x1 = 1"] = (
        prior,
        prior.score_model(SDE),
        C.Inpainting(torch.tensor([True, False]), torch.tensor([1.0, 0.0])),
    )
    prior = gmm16_full()
    truth = prior.sample(1, generator=g(1))[0]
    mask = torch.arange(16) < 8
    out["gmm16_full: inpaint 8 of 16"] = (prior, prior.score_model(SDE), C.Inpainting(mask, truth))
    A = torch.randn(4, 16, generator=g(2), **F64) / 4
    out["gmm16_full: y = A x, A 4x16"] = (prior, prior.score_model(SDE), C.DenseObservation(A, A @ truth))
    out["gmm16_full: y = A x + 0.1 n"] = (
        prior,
        prior.score_model(SDE),
        C.DenseObservation(A, A @ truth + 0.1 * torch.randn(4, generator=g(3), **F64), noise_std=0.1),
    )
    gen = g(5)
    prior = sk.GaussianMixture(
        [1.0, 1.0], torch.randn(2, 12, generator=gen, **F64), torch.rand(2, 12, generator=gen, **F64) * 0.5 + 0.2
    )
    truth = prior.sample(1, generator=gen)[0].reshape(3, 2, 2)
    w = torch.tensor([0.299, 0.587, 0.114], **F64)
    out["colorization: 3x2x2, 2 modes"] = (
        prior,
        image_model(prior, (3, 2, 2)),
        C.Colorization(w, torch.einsum("c,chw->hw", w, truth), shape=(3, 2, 2)),
    )
    return out


def methods(solvers):
    sde, ode = solvers["sde"], solvers["ode"]
    return {
        f"replacement [{sde}]": lambda m, o: (m, C.replacement(sde, o)),
        f"replacement [{ode}]": lambda m, o: (m, C.replacement(ode, o)),
        f"resample x4 [{sde}]": lambda m, o: (m, C.resample(sde, o, jumps=4)),
        f"resample x4 [{ode}]": lambda m, o: (m, C.resample(ode, o, jumps=4)),
        f"resample x10 [{sde}]": lambda m, o: (m, C.resample(sde, o, jumps=10)),
        f"observed_score [{sde}]": lambda m, o: (C.observed_score(m, o), sde),
        f"observed_score [{ode}]": lambda m, o: (C.observed_score(m, o), ode),
    }


def run_inverse(nfes, n):
    solvers, rows = pick_solvers(), []
    for case, (prior, model, obs) in cases().items():
        floor, ref = floor_and_ref(observation_posterior(prior, obs), n)
        rows.append({"case": case, "method": "noise floor", "nfe": None, "sw2": floor})
        print(f"{case}: floor {floor:.4f}", flush=True)
        for label, make in methods(solvers).items():
            for nfe in nfes:
                m, solver = make(model, obs)
                start = time.perf_counter()
                try:
                    res = sk.sample(m, solver=solver, nfe=nfe, num_samples=n, seed=0, progress=False, **F64)
                except sk.SolverError as exc:
                    print(f"  {label} nfe={nfe}: skipped ({exc})")
                    continue
                sw = sliced_wasserstein(res.samples.flatten(1), ref)
                rows.append(
                    {
                        "case": case,
                        "method": label,
                        "nfe": res.nfe,
                        "sw2": sw,
                        "seconds": round(time.perf_counter() - start, 2),
                    }
                )
                print(f"  {label:34s} nfe={res.nfe:4d}  SW2={sw:.4f}  ({sw / floor:.1f}x floor)", flush=True)
    return rows


# --- guidance -------------------------------------------------------------------------------------
def run_guidance(nfes, n):
    solvers, rows = pick_solvers(), []
    mix, k = ring2d(), 3
    floor, ref = floor_and_ref(mix.component(k), n)
    rows.append({"case": f"ring2d component {k}", "method": "noise floor", "nfe": None, "sw2": floor})
    print(f"guidance ring2d k={k}: floor {floor:.4f}")
    for solver in solvers.values():
        for nfe in nfes:
            for label, model in (
                (
                    "classifier w=1 (exact p_t(k|x))",
                    sk.guidance.classifier(mix.score_model(SDE), sk.guidance.mixture_classifier(mix, SDE), y=k),
                ),
                (
                    "classifier-free w=1 (exact s_c, s_u)",
                    sk.guidance.classifier_free(mix.component(k).score_model(SDE), mix.score_model(SDE)),
                ),
            ):
                res = sk.sample(model, solver=solver, nfe=nfe, num_samples=n, seed=0, progress=False, **F64)
                sw = sliced_wasserstein(res.samples, ref)
                rows.append(
                    {"case": f"ring2d component {k}", "method": f"{label} [{solver}]", "nfe": res.nfe, "sw2": sw}
                )
                print(f"  {label} [{solver}] nfe={res.nfe}: SW2={sw:.4f} ({sw / floor:.2f}x floor)")
    return rows


def markdown(rows, nfes, title):
    lines = [f"### {title}", ""]
    for case in dict.fromkeys(r["case"] for r in rows):
        sub = [r for r in rows if r["case"] == case]
        floor = next(r["sw2"] for r in sub if r["method"] == "noise floor")
        lines += [
            f"**{case}** (noise floor {floor:.4f})",
            "",
            "| method | " + " | ".join(f"NFE {x}" for x in nfes) + " |",
            "|---|" + "---:|" * len(nfes),
        ]
        for method in dict.fromkeys(r["method"] for r in sub if r["method"] != "noise floor"):
            cells = []
            for x in nfes:
                hit = [r for r in sub if r["method"] == method and r["nfe"] is not None and x - 4 < r["nfe"] <= x]
                cells.append(f"{hit[0]['sw2']:.4f}" if hit else "–")
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    recorded.add_flag(parser)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--nfe", type=int, nargs="+", default=[50, 100, 200, 400, 800])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    out = recorded.output_dir(HERE, args.record, "conditioning")
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    inverse = run_inverse(args.nfe, args.n)
    guidance = run_guidance(args.nfe, args.n)
    meta = {
        "n": args.n,
        "nfe": args.nfe,
        "sde": repr(SDE),
        "solvers": pick_solvers(),
        "seconds": round(time.perf_counter() - start, 1),
        "torch": torch.__version__,
    }
    (out / "results.json").write_text(json.dumps({"meta": meta, "inverse": inverse, "guidance": guidance}, indent=1))
    text = [
        "# Conditioning benchmark (recorded)",
        "",
        f"SW2 (sliced Wasserstein-2, 256 fixed directions) to **exact** samples, {args.n} samples, {meta['sde']}, "
        "seed 0, float64.  NFE counts every network call (resample x4 spends 4 calls per step; guidance "
        "spends 2 per evaluation).  Lower is better; the noise floor is the mean SW2 between independent "
        "exact sets of the same size.  Regenerate: `python benchmarks/conditioning/run.py`.",
        "",
        markdown(inverse, args.nfe, "Inpainting / linear constraints: SW2 to the exact posterior"),
        markdown(guidance, args.nfe, "Guidance: SW2 to the exact class-conditional (component k)"),
        f"Solvers: {meta['solvers']}; total {meta['seconds']} s.",
    ]
    (out / "results.md").write_text("\n".join(text) + "\n")


if __name__ == "__main__":
    main()
