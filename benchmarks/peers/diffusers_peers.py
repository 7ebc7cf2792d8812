"""diffusers' schedulers on the exact noise prediction of the mixture, each in its own standard loop:

    scheduler.set_timesteps(n); x = z * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        eps = exact_eps(scheduler.scale_model_input(x, t), t); x = scheduler.step(eps, t, x).prev_sample

Betas: the 1000-step discretisation of samplekit's VP SDE (beta_min 0.1, beta_max 20): linear,
beta_start 1e-4, beta_end 0.02.  The exact eps at timestep t uses alpha_bar_t = alphas_cumprod[t]
(float64), i.e. alpha = sqrt(alpha_bar_t), sigma = sqrt(1 - alpha_bar_t), eps = -sigma grad log p_t;
a fractional t (Karras variants of the Euler/Heun schedulers) interpolates log(sigma/alpha) linearly in t,
exactly as diffusers maps sigmas to timesteps.  Every other setting is the scheduler's default
(final_sigmas_type='zero', timestep_spacing, lower_order_final), except DDIM's clip_sample, which
diffusers turns on by default and which clips x0 to [-1, 1] (it would destroy any target outside
that box): it is turned off, as any user with such data must.  ``use_karras_sigmas=True`` variants
are run wherever the scheduler supports them, and ``final_sigmas_type='sigma_min'`` variants for the
multistep/singlestep DPM-Solver and UniPC schedulers (UniPC bh1 returns NaN with the default 'zero').
n is the largest number of inference steps whose timesteps (one network call each) fit the budget; calls are counted.
"""

from __future__ import annotations

import inspect
import warnings

import torch
from common import Counter, Problem, Record, timed_run

BETAS = dict(num_train_timesteps=1000, beta_schedule="linear", beta_start=0.0001, beta_end=0.02)

# name -> (scheduler class name, options, supports Karras sigmas)
SCHEDULERS = {
    "DPMSolverMultistep(dpmsolver++,2)": ("DPMSolverMultistepScheduler", {}, True),
    "DPMSolverMultistep(dpmsolver++,3)": ("DPMSolverMultistepScheduler", {"solver_order": 3}, True),
    "DPMSolverMultistep(sde-dpmsolver++,2)": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "sde-dpmsolver++"},
        True,
    ),
    "UniPCMultistep(bh1)": ("UniPCMultistepScheduler", {"solver_type": "bh1"}, True),
    "UniPCMultistep(bh2)": ("UniPCMultistepScheduler", {"solver_type": "bh2"}, True),
    "DEISMultistep": ("DEISMultistepScheduler", {}, True),
    "DDIM": ("DDIMScheduler", {"clip_sample": False}, False),
    "EulerDiscrete": ("EulerDiscreteScheduler", {}, True),
    "HeunDiscrete": ("HeunDiscreteScheduler", {}, True),
    "DPMSolverSinglestep": ("DPMSolverSinglestepScheduler", {}, True),
}
# schedulers whose last step (final_sigmas_type='zero', the default) returns the x0 prediction taken at the
# last timestep; a 'final=sigma_min' variant integrates to sigma_min instead (what samplekit's samplers all do)
FINAL_SIGMA_MIN = ("DPMSolverMultistepScheduler", "UniPCMultistepScheduler", "DPMSolverSinglestepScheduler")


def training_noise_levels() -> torch.Tensor:
    """log(sigma_t / alpha_t) at the 1000 training timesteps, in float64."""
    betas = torch.linspace(BETAS["beta_start"], BETAS["beta_end"], BETAS["num_train_timesteps"], dtype=torch.float64)
    alpha_bar = torch.cumprod(1 - betas, 0)
    return 0.5 * torch.log((1 - alpha_bar) / alpha_bar)


def exact_eps(score):
    log_s = training_noise_levels()

    def eps(x, t):
        t = float(t)
        lo = min(int(t), len(log_s) - 2)
        w = t - lo
        s = torch.exp((1 - w) * log_s[lo] + w * log_s[lo + 1])  # sigma / alpha at t
        alpha, sigma = 1 / torch.sqrt(1 + s * s), s / torch.sqrt(1 + s * s)
        return -sigma * score(x, alpha, sigma)

    return eps


def make(name: str, setting: str):
    import diffusers

    diffusers.utils.logging.set_verbosity_error()  # its notes on lower_order_final are recorded in the README
    cls_name, options, _ = SCHEDULERS[name]
    extra = {"karras": {"use_karras_sigmas": True}, "final=sigma_min": {"final_sigmas_type": "sigma_min"}}
    options = dict(options, **extra.get(setting, {}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(diffusers, cls_name)(**BETAS, **options)


def steps_for(scheduler, budget: int) -> int:
    for n in range(budget, 0, -1):
        scheduler.set_timesteps(n)
        if len(scheduler.timesteps) <= budget:
            return n
    raise ValueError(f"budget {budget} is too small for {type(scheduler).__name__}")


def settings(name: str) -> list[str]:
    """default, karras (if supported) and, where final_sigmas_type exists, the non-default 'sigma_min'."""
    cls_name, _, has_karras = SCHEDULERS[name]
    out = ["default"] + (["karras"] if has_karras else [])
    return out + (["final=sigma_min"] if cls_name in FINAL_SIGMA_MIN else [])


def runs(problem: Problem, budgets):
    for name in SCHEDULERS:
        for setting in settings(name):
            for budget in budgets:
                record = Record("diffusers", name, setting, problem.name, budget, problem.seed, problem.n)
                yield timed_run(problem, record, lambda: _sample(problem, name, setting, budget, record))


def _sample(problem: Problem, name: str, setting: str, budget: int, record: Record):
    scheduler = make(name, setting)
    n = steps_for(scheduler, budget)
    scheduler.set_timesteps(n)
    record.extra = {
        "num_inference_steps": n,
        "final_sigmas_type": scheduler.config.get("final_sigmas_type"),
        "timestep_spacing": scheduler.config.get("timestep_spacing"),
        "last_timestep": float(scheduler.timesteps[-1]),
    }
    model = Counter(exact_eps(problem.score))
    g = problem.generator()
    takes_generator = "generator" in inspect.signature(scheduler.step).parameters
    x = problem.z * float(scheduler.init_noise_sigma)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for t in scheduler.timesteps:
            eps = model(scheduler.scale_model_input(x, t), t)
            kwargs = {"generator": g} if takes_generator else {}
            x = scheduler.step(eps, t, x, **kwargs).prev_sample
    return x, model.calls
