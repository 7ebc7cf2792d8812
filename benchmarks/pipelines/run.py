"""What switching a diffusers pipeline's scheduler to samplekit buys, on the shipped digits UNet.

The shipped ``digits_unet`` (a diffusers UNet2DModel with its DDPMScheduler config) runs in a diffusers
``DiffusionPipeline`` (``DigitsPipeline`` below: the standard loop ``scale_model_input`` -> UNet -> ``step``),
once with every deterministic diffusers scheduler built by ``from_config`` from the checkpoint's config
(diffusers' defaults otherwise, as a user gets them), once with ``SamplekitScheduler`` (solver + schedule).
All runs start from the same x_T; each is scored by its RMS per-pixel distance to a tight solve of the same
probability-flow ODE (``ode_dopri5``, rtol = atol = 1e-6, float64 state) from that x_T, followed by the x0
prediction at t_min (timestep 0): every diffusers scheduler here ends on an x0 prediction (sigma = 0 or
abar = 1), so samplekit's solvers run with ``denoise_final=True`` (that call counted in their budget).

NFE is counted at the UNet (a forward hook), never taken from a scheduler: a diffusers scheduler gets the
largest ``num_inference_steps`` whose calls fit the budget.  samplekit's "best" at each budget is chosen on a
separate selection batch (seed 1) among the candidates below, then scored on the evaluation batch (seed 0).
Stochastic schedulers (DDPM, Euler ancestral, KDPM2 ancestral, DPM-Solver SDE) sample the SDE, not the ODE,
and are left out of an ODE-distance table.

    python benchmarks/pipelines/run.py            # writes results.md and results.csv beside this file
"""

from __future__ import annotations

import argparse
import csv
import inspect
import time
from pathlib import Path

import torch

import samplekit as sk
from samplekit.diffusers import SamplekitScheduler

HERE = Path(__file__).resolve().parent
WEIGHTS = HERE.parents[1] / "plugins" / "samplekit_models" / "weights" / "digits_unet"
BUDGETS = (5, 10, 20)
#: diffusers' deterministic schedulers: (label, class name, config overrides)
DIFFUSERS = [
    ("DDIM", "DDIMScheduler", {}),
    ("PNDM (PLMS)", "PNDMScheduler", {"skip_prk_steps": True}),
    ("LMS", "LMSDiscreteScheduler", {}),
    ("Euler", "EulerDiscreteScheduler", {}),
    ("Euler, Karras sigmas", "EulerDiscreteScheduler", {"use_karras_sigmas": True}),
    ("Heun", "HeunDiscreteScheduler", {}),
    ("KDPM2", "KDPM2DiscreteScheduler", {}),
    ("DPM-Solver++(2M)", "DPMSolverMultistepScheduler", {}),
    ("DPM-Solver++(2M), Karras sigmas", "DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    ("DPM-Solver++(3M)", "DPMSolverMultistepScheduler", {"solver_order": 3}),
    ("DPM-Solver++(2S) singlestep", "DPMSolverSinglestepScheduler", {}),
    ("DEIS", "DEISMultistepScheduler", {}),
    ("UniPC", "UniPCMultistepScheduler", {}),
]
#: samplekit candidates through the adapter: (solver, options); each with each schedule
CANDIDATES = [
    ("dpmpp_2m", {}),
    ("dpmpp_3m", {}),
    ("unipc", {"solver_order": 3}),
    ("deis", {"solver_order": 3}),
    ("ipndm", {}),
]
SCHEDULES = ("logsnr", "karras", "discrete")


def digits_pipeline_class():
    from diffusers import DiffusionPipeline

    class DigitsPipeline(DiffusionPipeline):
        """Unconditional sampling with any scheduler: latents * init_noise_sigma, then per timestep
        scale_model_input -> UNet -> step; returns the final latents (images in [-1, 1])."""

        def __init__(self, unet, scheduler):
            super().__init__()
            self.register_modules(unet=unet, scheduler=scheduler)

        @torch.no_grad()
        def __call__(self, latents, num_inference_steps, generator=None):
            self.scheduler.set_timesteps(num_inference_steps)
            # the generator goes to step() where the scheduler takes one (as StableDiffusionPipeline does)
            takes_generator = "generator" in inspect.signature(self.scheduler.step).parameters
            extra = {"generator": generator} if takes_generator else {}
            x = latents * self.scheduler.init_noise_sigma
            for t in self.scheduler.timesteps:
                out = self.unet(self.scheduler.scale_model_input(x, t), t).sample
                x = self.scheduler.step(out, t, x, **extra).prev_sample
            return x

    return DigitsPipeline


class CallCounter:
    """Counts UNet forward calls (a forward pre-hook)."""

    def __init__(self, unet):
        self.calls = 0
        unet.register_forward_pre_hook(self)

    def __call__(self, module, args):
        self.calls += 1


def reference(model, x_T):
    """x0 prediction at t_min after a tight dopri5 solve of the probability-flow ODE from x_T (float64 state)."""
    res = sk.sample(model, "ode_dopri5", x_T=x_T.double(), rtol=1e-6, atol=1e-6, nfe=5000, progress=False)
    x0 = model.denoise(res.samples, model.sde.t_min)
    return x0.float(), res.nfe


def rms(x, ref):
    return float(((x - ref) ** 2).mean(dim=(1, 2, 3)).sqrt().mean())


def run_fitting(pipe, counter, scheduler, budget, x_T, steps_of):
    """Run with the largest step count whose UNet calls fit ``budget``; (output, calls, steps) or None."""
    pipe.scheduler = scheduler
    best = None
    for steps in steps_of(budget):
        try:
            scheduler.set_timesteps(steps)
        except Exception:  # noqa: BLE001  (too few or too many steps for this scheduler: the next count)
            continue
        if len(scheduler.timesteps) > budget:
            continue
        counter.calls = 0
        try:
            out = pipe(x_T, steps)
        except Exception as exc:  # noqa: BLE001  (a scheduler refusing a step count: recorded, next)
            print(f"  {type(scheduler).__name__} refuses {steps} steps: {type(exc).__name__}: {exc}")
            continue
        if counter.calls <= budget:
            best = (out, counter.calls, steps)
            break
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-samples", type=int, default=64)
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    import diffusers

    start = time.perf_counter()
    unet = diffusers.UNet2DModel.from_pretrained(WEIGHTS).eval()
    config = diffusers.DDPMScheduler.from_pretrained(WEIGHTS).config
    pipe = digits_pipeline_class()(unet, diffusers.DDPMScheduler.from_config(config))
    counter = CallCounter(unet)
    model = sk.load_model(WEIGHTS)
    batches = {
        "eval": torch.randn(args.num_samples, 1, 8, 8, generator=torch.Generator().manual_seed(0)),
        "select": torch.randn(args.num_samples // 2, 1, 8, 8, generator=torch.Generator().manual_seed(1)),
    }
    refs, ref_calls = {}, {}
    for name, x_T in batches.items():
        refs[name], ref_calls[name] = reference(model, x_T)
        print(f"reference ({name}): dopri5 {ref_calls[name]} calls")
    ref_nfe = ref_calls["eval"]

    rows = []
    for label, cls_name, overrides in DIFFUSERS:
        cls = getattr(diffusers, cls_name)
        for budget in BUDGETS:
            sched = cls.from_config(config, **overrides)
            got = run_fitting(pipe, counter, sched, budget, batches["eval"], lambda b: range(b, 0, -1))
            if got is None:
                rows.append(dict(method=label, kind="diffusers", budget=budget, nfe="", steps="", rms=""))
                continue
            out, calls, steps = got
            rows.append(
                dict(method=label, kind="diffusers", budget=budget, nfe=calls, steps=steps, rms=rms(out, refs["eval"]))
            )
            print(f"{label:34s} NFE {calls:3d} ({steps} steps): {rows[-1]['rms']:.5f}")

    for budget in BUDGETS:
        scored = []
        for solver, options in CANDIDATES:
            for schedule in SCHEDULES:
                sched = SamplekitScheduler.from_config(
                    config, solver=solver, schedule=schedule, denoise_final=True, **options
                )
                per_step = sched.order
                steps_of = lambda b, k=per_step: range(max((b - 1) // k, 1), 0, -1)  # noqa: E731
                got = run_fitting(pipe, counter, sched, budget, batches["select"], steps_of)
                if got is None:
                    continue
                scored.append((rms(got[0], refs["select"]), solver, options, schedule))
                label = f"samplekit {solver}{' ' + str(options) if options else ''} / {schedule}"
                rows.append(
                    dict(
                        method=label,
                        kind="samplekit (selection batch)",
                        budget=budget,
                        nfe=got[1],
                        steps=got[2],
                        rms=scored[-1][0],
                    )
                )
        _, solver, options, schedule = min(scored, key=lambda s: s[0])
        sched = SamplekitScheduler.from_config(config, solver=solver, schedule=schedule, denoise_final=True, **options)
        out, calls, steps = run_fitting(
            pipe, counter, sched, budget, batches["eval"], lambda b: range(max((b - 1) // sched.order, 1), 0, -1)
        )
        label = f"samplekit best: {solver}{' ' + str(options) if options else ''} / {schedule}"
        rows.append(
            dict(method=label, kind="samplekit", budget=budget, nfe=calls, steps=steps, rms=rms(out, refs["eval"]))
        )
        print(f"{label:34s} NFE {calls:3d} ({steps} steps): {rows[-1]['rms']:.5f}")

    seconds = time.perf_counter() - start
    write(args.out, rows, ref_nfe, args.num_samples, seconds)


def write(out: Path, rows, ref_nfe, n, seconds) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["method", "kind", "budget", "nfe", "steps", "rms"])
        writer.writeheader()
        writer.writerows(rows)
    table = {}
    for r in rows:
        if r["kind"] == "samplekit (selection batch)":
            continue
        table.setdefault((r["kind"], r["method"] if r["kind"] == "diffusers" else "samplekit"), {})[r["budget"]] = r
    lines = [
        "# diffusers schedulers vs samplekit through `SamplekitScheduler` (recorded)",
        "",
        f"Shipped digits UNet (diffusers UNet2DModel, DDPMScheduler config: linear betas, leading spacing), in a "
        f"diffusers DiffusionPipeline, {n} samples, float32, one x_T for all.  Cell: RMS per-pixel distance (images in "
        f"[-1, 1]) to the x0 prediction at t_min after a dopri5 solve (rtol = atol = 1e-6, {ref_nfe} calls) of the "
        "same probability-flow ODE, at the NFE counted at the UNet (in brackets when below the budget).  samplekit: "
        "the best candidate solver / schedule per budget, chosen on a separate selection batch (all candidates in "
        "results.csv), with `denoise_final=True`.  Lower is better.  Regenerate: "
        "`python benchmarks/pipelines/run.py`.",
        "",
        "| scheduler | NFE 5 | NFE 10 | NFE 20 |",
        "|---|---:|---:|---:|",
    ]
    for (kind, method), cells in table.items():
        name = (
            method
            if kind == "diffusers"
            else "**samplekit best** ("
            + "; ".join(f"{b}: {cells[b]['method'].split(': ', 1)[1]}" for b in BUDGETS if b in cells)
            + ")"
        )
        vals = []
        for b in BUDGETS:
            r = cells.get(b)
            if r is None or r["rms"] == "":
                vals.append("-")
            else:
                vals.append(f"{r['rms']:.4f}" + (f" ({r['nfe']})" if r["nfe"] != b else ""))
        lines.append(f"| {name} | " + " | ".join(vals) + " |")
    lines += ["", f"Total {seconds:.0f} s on CPU (torch {torch.__version__})."]
    (out / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
