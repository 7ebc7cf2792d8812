"""``hermite_pec`` against dopri5 off the exact float64 VP mixtures of ``vs_scipy.md``, with the wall time.

The cases, points, probes and references of ``adams_default.py`` (its cached references in adams_default.json:
dopri5 at 1e-9 in float64, or 1e-6 in float32 for the digits UNet): the shipped ring2d MLP and digits UNet in
float32, the VE / EDM / rectified-flow SDEs, the DiscreteVPSDE (beta(t) piecewise constant), float32, and the
Hutchinson estimators.  Both methods are run here, one after the other in one process on one thread, so
their seconds compare.  NFE is counted at the raw network; ``backward`` = backward passes (result.n_vjp:
the estimator's, plus hermite_pec's JVP and divergence derivative).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/likelihood/hermite_cases.py [--only SUBSTRING]

Rows are cached in hermite_cases.json; the table goes to hermite_cases.md below its marker line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch
from adams_default import REF_FLOAT32, CountingNet, Float32Probes, cases

import samplekit as sk

HERE = Path(__file__).parent
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: recorded.py
import recorded  # noqa: E402

JSON = HERE / "hermite_cases.json"
MD = HERE / "hermite_cases.md"
METHODS = ("dopri5", "hermite_pec")


def run_one(build, dtype, estimator, method, tol):
    model, x, exact = build(dtype)
    counter = CountingNet(model.net)
    model.net = counter
    est = estimator if estimator == "exact" else Float32Probes(estimator)
    start = time.perf_counter()
    try:
        res = sk.log_likelihood(model, x, estimator=est, method=method, rtol=tol, atol=tol, seed=0)
    except sk.errors.SamplekitError as error:  # refused (e.g. no gradient in t): recorded as such
        return {"refused": str(error), "nfe": counter.calls}
    seconds = time.perf_counter() - start
    assert counter.calls == res.nfe, (counter.calls, res.nfe)
    return {"log_prob": res.log_prob.double().tolist(), "nfe": res.nfe, "backward": res.n_vjp, "seconds": seconds}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    recorded.add_flag(parser)
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    global JSON, MD
    out = recorded.output_dir(HERE, args.record, "likelihood")
    if out != HERE:  # a scratch run starts from the recorded cache and never writes it
        if JSON.exists() and not (out / JSON.name).exists():
            shutil.copy(JSON, out / JSON.name)
        JSON, MD = out / JSON.name, out / MD.name
    torch.set_num_threads(1)
    refs = json.loads((HERE / "adams_default.json").read_text())["refs"]
    store = json.loads(JSON.read_text()) if JSON.exists() else {}
    for case, build, est, tols, _ in cases():
        if args.only not in case or case not in refs:
            continue
        dtype = torch.float32 if "/f32/" in case else torch.float64
        lp_ref = torch.tensor(refs[case]["log_prob"], dtype=torch.float64)
        for tol in tols:
            for method in METHODS:
                key = f"{case}|{tol:g}|{method}"
                if key in store:
                    continue
                row = {"case": case, "tol": tol, "method": method, **run_one(build, dtype, est, method, tol)}
                if "log_prob" in row:
                    lp = torch.tensor(row.pop("log_prob"), dtype=torch.float64)
                    row["err"] = (lp - lp_ref).abs().mean().item() / refs[case]["d"]
                    row["ref"] = f"{refs[case]['tol']:g} {'float32' if case in REF_FLOAT32 else 'float64'}"
                store[key] = row
                JSON.write_text(json.dumps(store, indent=1))
                print(json.dumps(row), flush=True)
    marker = "<!-- table: written by hermite_cases.py -->\n"
    prose = MD.read_text().split(marker)[0] if MD.exists() and marker in MD.read_text() else ""
    MD.write_text(prose + marker + report(store))


def report(store) -> str:
    lines = [
        "| case | tol | dopri5 NFE | hermite_pec NFE | NFE ratio | dopri5 err | hermite_pec err | err ratio | "
        "backward per eval dopri5 / hermite | seconds dopri5 / hermite | time ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, b in store.items():
        if b["method"] != "hermite_pec":
            continue
        a = store.get(key.replace("hermite_pec", "dopri5"))
        if a is None:
            continue
        head = f"| {b['case']} | {b['tol']:g} | {a['nfe']} |"
        if "refused" in b:
            lines.append(f"{head} refused: {b['refused'][:90]} | | | | | | | |")
            continue
        lines.append(
            f"{head} {b['nfe']} | {b['nfe'] / a['nfe']:.2f} | {a['err']:.2e} | {b['err']:.2e} | "
            f"{b['err'] / a['err']:.2f} | {a['backward'] / a['nfe']:.1f} / {b['backward'] / b['nfe']:.1f} | "
            f"{a['seconds']:.2f} / {b['seconds']:.2f} | {b['seconds'] / a['seconds']:.2f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
