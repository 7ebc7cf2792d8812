"""Flow matching: every registered samplekit solver under ``rectified_flow`` beside diffusers' flow schedulers,
on the exact Gaussian-mixture targets, quality (sliced W2 / noise floor) per NFE.

    .venv/bin/python benchmarks/flow/run.py           # ring2d + gmm16_full, seeds 0 and 1, NFE 5/10/20/50
    .venv/bin/python benchmarks/flow/run.py --quick   # ring2d, seed 0, NFE 10/20, 1000 samples (smoke run)

The process is the linear interpolant x_t = (1 - t) x0 + t eps (alpha_t = 1 - t, sigma_t = t, T = 1; SD3 /
Flux / rectified flow).  The model is exact: the mixture's E[x0 | x_t] (``GaussianMixture.score_model`` on
``rectified_flow``), and diffusers' schedulers receive the same model as the velocity
u(x, sigma) = eps - x0 = (x - x0) / sigma, their own convention (``FlowMatchEulerDiscreteScheduler``,
``FlowMatchHeunDiscreteScheduler``, each at shift 1 and SD3's shift 3, ending at sigma = 0).  Every sampler
starts from the same standard-normal draw z (common random numbers), and NFE is counted at the model.

* samplekit: every registered solver with its default schedule, and fixed-step ones also on ``uniform``
  (linear in t, FlowMatchEuler's own grid); adaptive solvers (``adaptive``) at rtol = atol in
  {1e-2, 1e-3, 1e-4}, placed in the first NFE column their real NFE fits.
* diffusers: n inference steps, n the largest whose network calls fit the budget (Euler: n; Heun: 2n - 1).
* quality: sliced W2 against an independent exact reference set of the same size, divided by the noise
  floor (the same between exact sets, averaged over 5 pairs); 1.0 = as good as exact samples.  Each cell is
  averaged over the seeds.  A converged deterministic sampler maps z to one exact sample set, whose ratio
  scatters around 1 by +-0.3 per seed: differences below that are noise.
* accuracy (deterministic samplers): the path error, the RMS distance per sample to the exact flow's
  solution from the same z (ode_dopri5 on the exact model at rtol = atol = 1e-8 in float64), at each
  library's own end point: samplekit's t_min = 1e-3, diffusers' sigma = 0 (a solve to t = 1e-6).  It has
  no sampling noise, so it ranks solvers where the SW2 ratio cannot.

Writes results.jsonl (one record per run), results.json (the tables) and results.md beside this script.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import torch

import samplekit as sk
from samplekit.bench.flow import flow_errors, flow_reference
from samplekit.plugins import get_registry
from samplekit.sde import RectifiedFlowSDE

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "peers"))
from common import Problem  # noqa: E402

sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))  # benchmarks/: recorded.py
import digits  # noqa: E402
import recorded  # noqa: E402

TARGETS = {"ring2d": 4000, "gmm16_full": 2000}
BUDGETS = (5, 10, 20, 50)
SEEDS = (0, 1)
TOLERANCES = (1e-2, 1e-3, 1e-4)
DIFFUSERS = {
    "FlowMatchEuler": ("FlowMatchEulerDiscreteScheduler", lambda b: b),
    "FlowMatchHeun": ("FlowMatchHeunDiscreteScheduler", lambda b: (b + 1) // 2),
}
SHIFTS = (1.0, 3.0)
REFERENCE_TOL = 1e-8
ZERO = 1e-6  # the exact flow's end point standing in for diffusers' sigma = 0


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--targets", default=",".join(TARGETS), help="exact targets ('none': the digits model only)")
    p.add_argument("--nfe", default=",".join(map(str, BUDGETS)))
    p.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    p.add_argument("--solvers", default=None, help="comma-separated samplekit solvers (default: every registered)")
    p.add_argument("--n", type=int, default=None)
    p.add_argument("--no-digits", action="store_true", help="leave out the shipped digits_flow model")
    p.add_argument(
        "--records",
        nargs="+",
        default=None,
        help="write the report from these files of printed records (run logs or results.jsonl files, "
        "e.g. of runs split over processes) instead of running; a (target, seed) group without "
        "its closing diffusers records (an interrupted run) is left out",
    )
    p.add_argument("--out", default=None, help="output directory (default: see --record)")
    recorded.add_flag(p)
    a = p.parse_args(argv)
    a.out = a.out or str(recorded.output_dir(HERE, a.record, "flow"))
    if a.quick:
        a.targets, a.nfe, a.seeds, a.n = "ring2d", "10,20", "0", a.n or 1000
    a.targets, a.nfe = [t for t in a.targets.split(",") if t and t != "none"], tuple(int(b) for b in a.nfe.split(","))
    a.seeds = tuple(int(s) for s in a.seeds.split(","))
    return a


# --- the runs ------------------------------------------------------------------------------------
def samplekit_runs(problem, model, solvers, budgets, uniform=True, tolerances=TOLERANCES):
    """(label, setting, budget, run) for every registered solver: its default grid (and ``uniform`` for
    deterministic ones if asked), adaptive ones at each tolerance."""
    for info in solvers:
        caps = sk.get_solver(info.name).capabilities()
        if caps.adaptive:
            for tol in tolerances:
                yield (
                    info.name,
                    f"rtol={tol:g}",
                    None,
                    lambda name=info.name, tol=tol: sk.sample(
                        model, name, nfe=5000, x_T=problem.z, seed=problem.seed, progress=False, rtol=tol, atol=tol
                    ),
                )
            continue
        schedules = [None] if caps.stochastic or not uniform else [None, "uniform"]
        for schedule in schedules:
            extra = {} if schedule is None else {"schedule": schedule}
            label = info.name if schedule is None else f"{info.name} (uniform)"
            for b in budgets:
                yield (
                    label,
                    "",
                    b,
                    lambda name=info.name, b=b, extra=extra: sk.sample(
                        model, name, nfe=b, x_T=problem.z, seed=problem.seed, progress=False, **extra
                    ),
                )


def velocity(mixture, counter):
    """u(x, sigma) = (x - E[x0 | x]) / sigma for x = (1 - sigma) x0 + sigma eps: the exact flow (eps - x0)."""

    def u(x, sigma):
        counter[0] += 1
        s = torch.as_tensor(sigma, dtype=torch.float64)
        x64 = x.to(torch.float64)
        x0 = mixture.noised_denoiser(x64, 1 - s, s)
        return ((x64 - x0) / s).to(x.dtype)

    return u


def exact_flow(problem, t_min):
    """The exact flow's solution from problem.z down to t_min (float64 dopri5 at REFERENCE_TOL)."""
    model = problem.mixture.score_model(RectifiedFlowSDE(t_min=t_min))
    return flow_reference(get_registry(), model, problem.z, REFERENCE_TOL)["samples"]


def diffusers_run(problem, cls_name, shift, n_steps):
    import diffusers

    counter = [0]
    u = velocity(problem.mixture, counter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheduler = getattr(diffusers, cls_name)(shift=shift)
    scheduler.set_timesteps(n_steps)
    x = problem.z.clone()
    start = time.perf_counter()
    for t in scheduler.timesteps:
        sigma = float(t) / scheduler.config.num_train_timesteps
        x = scheduler.step(u(x, sigma), t, x).prev_sample
    return x, counter[0], time.perf_counter() - start


def run_cell(problem, fn, reference):
    try:
        res = fn()
    except Exception as exc:  # a solver that cannot run this cell: recorded, the run goes on
        return {"status": "error", "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
    x = res.samples
    if not torch.isfinite(x).all():
        return {"status": "nan", "nfe": int(res.nfe)}
    return {
        "status": "ok",
        "nfe": int(res.nfe),
        "seconds": round(res.seconds, 3),
        **problem.metrics(x.double()),
        "path_err": float(flow_errors(x, reference).mean()),
    }


def read_records(files):
    """Records printed by runs (JSON, or Python dict reprs for the digits model), de-duplicated, complete
    (target, seed) groups only."""
    import ast

    seen, records = set(), []
    for file in files:
        for line in Path(file).read_text().splitlines():
            if not line.startswith("{"):
                continue
            rec = json.loads(line) if line.startswith('{"') else ast.literal_eval(line)
            key = json.dumps(rec, sort_keys=True)
            if key not in seen:
                seen.add(key)
                records.append(rec)
    complete = {
        (r["target"], r["seed"])
        for r in records
        if r["library"] == "diffusers" and r["sampler"].startswith("FlowMatchHeun")
    }
    return [r for r in records if (r["target"], r["seed"]) in complete]


def report(args, records, floors, solvers, wall):
    out = Path(args.out)
    exact = [r for r in records if r["target"] != "digits_flow"]
    digit_records = [r for r in records if r["target"] == "digits_flow"]
    budgets = tuple(sorted({r["budget"] for r in exact if r["budget"] is not None})) or args.nfe
    digit_budgets = tuple(sorted({r["budget"] for r in digit_records if r["budget"] is not None}))
    with open(out / "results.jsonl", "w") as f:
        for rec in records:
            f.write(json.dumps(rec) + "\n")
    floor = {t: sum(v) / len(v) for t, v in floors.items()}
    tables = summarise(exact, floor, budgets)
    digit_table = summarise_digits(digit_records, digit_budgets)
    seeds = sorted({r["seed"] for r in exact})
    targets = {t: args.n or TARGETS[t] for t in floor}
    digit_info = args.digit_info if digit_records else {"skipped": "not in these records"}
    meta = {
        "targets": targets,
        "seeds": seeds,
        "budgets": list(budgets),
        "floor_sw2": floor,
        "wall_seconds": wall,
        "solvers": solvers,
        "digits_flow": {**digit_info, "budgets": list(digit_budgets)},
        "seeds_per_target": {t: sorted({r["seed"] for r in exact if r["target"] == t}) for t in floor},
    }
    (out / "results.json").write_text(
        json.dumps({"meta": meta, "tables": tables, "digits_flow": digit_table}, indent=1) + "\n"
    )
    (out / "results.md").write_text(markdown(meta, tables) + digits_markdown(meta, digit_table))


def report_from_records(args):
    records = read_records(args.records)
    floors = {}
    for target, seed in sorted({(r["target"], r["seed"]) for r in records if r["target"] != "digits_flow"}):
        floors.setdefault(target, []).extend(
            f["sw2"] for f in Problem(target, seed, args.n or TARGETS[target]).floors()
        )
    solvers = sorted({r["sampler"].split(" ")[0] for r in records if r["library"] == "samplekit"})
    digit_recs = [r for r in records if r["target"] == "digits_flow"]
    args.digit_info = {"n": digits.N_SAMPLES, "fd_floor": digits.fd_floor()} if digit_recs else {}
    report(args, records, floors, solvers, None)


def main(argv=None):
    args = parse(argv)
    torch.set_num_threads(1)
    if args.records:
        return report_from_records(args)
    out = Path(args.out)
    sde = sk.get_sde("rectified_flow")
    solvers = sorted(sk.available("solver"), key=lambda c: c.name)
    if args.solvers:
        solvers = [s for s in solvers if s.name in args.solvers.split(",")]
    records, floors = [], {}
    started = time.perf_counter()
    for target in args.targets:
        for seed in args.seeds:
            problem = Problem(target, seed, args.n or TARGETS[target])
            fl = problem.floors()
            floors.setdefault(target, []).extend(f["sw2"] for f in fl)
            model = problem.mixture.score_model(sde)
            ref_tmin, ref_zero = exact_flow(problem, sde.t_min), exact_flow(problem, ZERO)
            for label, setting, budget, fn in samplekit_runs(problem, model, solvers, args.nfe):
                rec = {
                    "library": "samplekit",
                    "sampler": label,
                    "setting": setting,
                    "target": target,
                    "seed": seed,
                    "budget": budget,
                    **run_cell(problem, fn, ref_tmin),
                }
                records.append(rec)
                print(json.dumps(rec), flush=True)
            for name, (cls_name, steps_for) in DIFFUSERS.items():
                for shift in SHIFTS:
                    for b in args.nfe:
                        n = steps_for(b)
                        rec = {
                            "library": "diffusers",
                            "sampler": f"{name} (shift {shift:g})",
                            "setting": "",
                            "target": target,
                            "seed": seed,
                            "budget": b,
                        }
                        if n < 1:
                            rec.update(status="skipped", error="budget below one step")
                        else:
                            x, calls, secs = diffusers_run(problem, cls_name, shift, n)
                            rec.update(
                                status="ok",
                                nfe=calls,
                                seconds=round(secs, 3),
                                **problem.metrics(x.double()),
                                path_err=float(flow_errors(x, ref_zero).mean()),
                            )
                            assert calls <= b, (name, b, calls)
                        records.append(rec)
                        print(json.dumps(rec), flush=True)
    digit_budgets = tuple(b for b in args.nfe if b <= digits.MAX_NFE)
    digit_records, digit_info = (
        ([], {"skipped": "--no-digits"})
        if args.no_digits
        else digits.runs(
            lambda problem, model, budgets: samplekit_runs(
                problem, model, solvers, budgets, uniform=False, tolerances=digits.TOLERANCES
            ),
            DIFFUSERS,
            digits.SHIFTS,
            digit_budgets,
        )
    )
    with open(out / "results.jsonl", "w") as f:
        for rec in records + digit_records:
            f.write(json.dumps(rec) + "\n")
    floor = {t: sum(v) / len(v) for t, v in floors.items()}
    tables = summarise(records, floor, args.nfe)
    digit_table = summarise_digits(digit_records, digit_budgets)
    meta = {
        "targets": {t: args.n or TARGETS[t] for t in args.targets},
        "seeds": list(args.seeds),
        "budgets": list(args.nfe),
        "floor_sw2": floor,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "solvers": [s.name for s in solvers],
        "digits_flow": {**digit_info, "budgets": list(digit_budgets)},
    }
    (out / "results.json").write_text(
        json.dumps({"meta": meta, "tables": tables, "digits_flow": digit_table}, indent=1) + "\n"
    )
    (out / "results.md").write_text(markdown(meta, tables) + digits_markdown(meta, digit_table))
    print(f"done in {meta['wall_seconds']} s")


# --- the tables ----------------------------------------------------------------------------------
def summarise(records, floor, budgets):
    """{target: {row: {budget: mean SW2/floor over seeds, or a status}}} (adaptive rows at their real NFE)."""
    tables = {}
    for target in floor:
        rows = {}
        for rec in (r for r in records if r["target"] == target):
            row = rows.setdefault(rec["sampler"] + (f" [{rec['setting']}]" if rec["setting"] else ""), {})
            key = rec["budget"]
            if key is None:  # adaptive: the first column its real NFE fits, and "any" whatever it spent
                row.setdefault("any", []).append(rec)
                fits = [b for b in budgets if rec.get("nfe") is not None and rec["nfe"] <= b]
                if not fits:
                    continue
                key = fits[0]
            row.setdefault(key, []).append(rec)
        table = {}
        for row, cells in rows.items():
            table[row] = {}
            for key, recs in cells.items():
                ok = [r for r in recs if r["status"] == "ok"]
                if len(ok) == len(recs):
                    table[row][str(key)] = {
                        "ratio": sum(r["sw2"] for r in ok) / len(ok) / floor[target],
                        "path_err": sum(r["path_err"] for r in ok) / len(ok),
                        "nfe": sum(r["nfe"] for r in ok) / len(ok),
                    }
                else:
                    table[row][str(key)] = {"status": recs[0]["status"], "error": recs[0].get("error", "")}
        tables[target] = table
    return tables


def summarise_digits(records, budgets):
    """{row: {budget: {"path_err", "fd", "nfe"} or a status}} for the digits_flow model (one seed)."""
    table = {}
    for rec in records:
        row = table.setdefault(rec["sampler"] + (f" [{rec['setting']}]" if rec["setting"] else ""), {})
        key = rec["budget"]
        if key is None:
            row["any"] = rec
            fits = [b for b in budgets if rec.get("nfe") is not None and rec["nfe"] <= b]
            if not fits:
                continue
            key = fits[0]
        row[str(key)] = rec
    return table


def deterministic(row):
    """Whether a row's sampler follows the probability-flow ODE (diffusers' flow schedulers do)."""
    if row.startswith("FlowMatch"):
        return True
    try:
        return not sk.get_solver(row.split(" ")[0]).capabilities().stochastic
    except Exception:
        return False


def digits_markdown(meta, table):
    info = meta["digits_flow"]
    if "skipped" in info:
        return f"\n## digits_flow\n\nNot run: {info['skipped']}.\n"
    budgets = info["budgets"]
    lines = [
        "",
        f"## digits_flow (shipped rectified-flow digits UNet, {info['n']} samples, one x_T draw)",
        "",
        "Each cell: `path error / FD` — the RMS distance per sample to the network's own ODE solution from "
        "the same x_T (dopri5, rtol = atol = 1e-5), and the digits Frechet distance to held-out digits "
        f"(data floor {info['fd_floor']:.2f}). Stochastic samplers follow other paths by design: read "
        "their FD only.",
        "",
        "| best at NFE (path error) | samplekit | diffusers |",
        "|---|---|---|",
    ]
    for b in budgets:
        cells = [
            (c["path_err"], row)
            for row, cols in table.items()
            for k, c in cols.items()
            if k == str(b) and c.get("status") == "ok" and deterministic(row)
        ]
        s_ = min([c for c in cells if not c[1].startswith("FlowMatch")], default=None)
        d_ = min([c for c in cells if c[1].startswith("FlowMatch")], default=None)
        lines.append(f"| {b} | {f'{s_[1]} {s_[0]:.4f}' if s_ else '–'} | {f'{d_[1]} {d_[0]:.4f}' if d_ else '–'} |")
    lines += [
        "",
        "| sampler | " + " | ".join(f"NFE {b}" for b in budgets) + " | adaptive: any NFE |",
        "|---|" + "---|" * (len(budgets) + 1),
    ]
    for row in sorted(table, key=lambda r: (r.startswith("FlowMatch"), r)):
        cells = []
        for key in [str(b) for b in budgets] + ["any"]:
            c = table[row].get(key)
            if c is None:
                cells.append("")
            elif c.get("status") == "ok":
                cells.append(f"{c['path_err']:.4f} / {c['fd']:.2f}" + (f" @{c['nfe']}" if row.endswith("]") else ""))
            else:
                cells.append("–" if "too small" in c.get("error", "") else c.get("status", ""))
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def best_per_budget(table, budgets, measure="ratio"):
    out = {}
    for b in budgets:
        cells = [
            (c[measure], row)
            for row, cols in table.items()
            for k, c in cols.items()
            if k == str(b) and measure in c and (measure == "ratio" or deterministic(row))
        ]
        sk_cells = [c for c in cells if not c[1].startswith("FlowMatch")]
        df_cells = [c for c in cells if c[1].startswith("FlowMatch")]
        out[b] = (min(sk_cells) if sk_cells else None, min(df_cells) if df_cells else None)
    return out


def fmt(cell):
    if cell is None:
        return ""
    if "ratio" in cell:
        return f"{cell['ratio']:.2f}"
    if "too small" in cell.get("error", ""):
        return "–"  # below the solver's minimum number of steps
    return cell["status"]


def markdown(meta, tables):
    budgets = meta["budgets"]
    lines = [
        "# Flow matching: solvers under rectified_flow vs diffusers' flow schedulers (exact mixtures)",
        "",
        "Written by `benchmarks/flow/run.py` (see its docstring for the method). Each cell: sliced W2 to an "
        "exact reference set divided by the noise floor (1.0 = exact samples), mean over seeds "
        f"{meta['seeds']}; samples per set: {meta['targets']}. Adaptive solvers sit in the first column their "
        "real NFE fits (and in the last column at whatever they spent; '–': below the solver's minimum steps). "
        "The path error (deterministic samplers) is the RMS distance per sample to the exact flow's solution "
        "from the same x_T, at each library's own end point (samplekit t_min = 1e-3, diffusers sigma = 0). "
        + (
            f"Wall time {meta['wall_seconds']:.0f} s."
            if meta["wall_seconds"]
            else f"Seeds per target: {meta.get('seeds_per_target')} (runs split over processes, merged)."
        ),
        "",
    ]
    for target, table in tables.items():
        best = best_per_budget(table, budgets)
        best_path = best_per_budget(table, budgets, "path_err")
        lines += [
            f"## {target} (noise floor SW2 {meta['floor_sw2'][target]:.4f})",
            "",
            "| NFE | best SW2/floor, samplekit | best SW2/floor, diffusers | least path error, samplekit | "
            "least path error, diffusers |",
            "|---|---|---|---|---|",
        ]
        for b in budgets:
            s, d = best[b]
            sp, dp = best_path[b]
            lines.append(
                f"| {b} | {f'{s[1]} {s[0]:.2f}' if s else '–'} | {f'{d[1]} {d[0]:.2f}' if d else '–'} | "
                f"{f'{sp[1]} {sp[0]:.2g}' if sp else '–'} | {f'{dp[1]} {dp[0]:.2g}' if dp else '–'} |"
            )
        lines += [
            "",
            "Cells: SW2 / floor (path error, deterministic samplers); best SW2 / floor per column in bold.",
            "",
            "| sampler | " + " | ".join(f"NFE {b}" for b in budgets) + " | adaptive: any NFE |",
            "|---|" + "---|" * (len(budgets) + 1),
        ]
        best_ratio = {b: min([x for x in best[b] if x] or [(math.inf, "")])[0] for b in budgets}
        for row in sorted(table, key=lambda r: (r.startswith("FlowMatch"), r)):
            cells = []
            for b in budgets:
                c = table[row].get(str(b))
                text = fmt(c)
                if c and "ratio" in c and c["ratio"] == best_ratio[b]:
                    text = f"**{text}**"
                if c and "ratio" in c and deterministic(row):
                    text += f" ({c['path_err']:.1e})"
                if c and "ratio" in c and row.endswith("]"):
                    text += f" @{c['nfe']:.0f}"
                cells.append(text)
            anyc = table[row].get("any")
            cells.append(
                f"{fmt(anyc)} ({anyc['path_err']:.1e}) @{anyc['nfe']:.0f}" if anyc and "ratio" in anyc else fmt(anyc)
            )
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
