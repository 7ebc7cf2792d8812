"""Loading a diffusers scheduler config reproduces that scheduler at every step count, spacing, prediction
type and sigma option: diffusers' own pipeline loop (tests/diffusers_loop.py: a tiny class-conditional
UNet2DModel, classifier-free guidance 3 in one batched call, guidance rescale 0.7 on v-prediction models)
against ``sk.sample`` on ``scheduler_grid`` with the ``scheduler_solver`` twin, same latents, float32.

Conventions reproduced (samplekit/diffusers/conventions.py): the network's timestep (rounded or truncated
interpolated Karras / exponential / beta timesteps; fractional Euler ones), DDIM's previous-timestep rule
(ddim ``stride``), leading / linspace / trailing with steps_offset, zero terminal SNR (abar_{N-1} = 0 for DDIM,
2^-24 for the others) with ``set_alpha_to_one`` either way, ``final_sigmas_type`` zero / sigma_min,
DPM-Solver++'s and DEIS's own order plan (``orders``) and DPM-Solver++(3M)'s weights (``midpoint_weights``).
Not reproduced, and refused by ``scheduler_solver`` with the reason: DPMSolverSinglestep, EulerAncestral, Heun,
LMS, KDPM2 (no checked twin), UniPC ending at sigma_min, Euler with zero terminal SNR, clipping.

Tolerance: max |samplekit - diffusers| <= 1e-4 max(1, max |diffusers|); measured worst 2e-6 (float32).
The default run takes every configuration at two (spacing, prediction type) pairs, every spacing and
prediction type for each scheduler, at step counts rotating through 4..50 with non-divisors of 1000; the slow
test takes every configuration at every spacing and prediction type and every step count 4..50.
"""

from __future__ import annotations

import copy
import itertools

import pytest
import torch

import samplekit as sk

diffusers = pytest.importorskip("diffusers")

import diffusers_tiny as tiny  # noqa: E402
from diffusers_loop import diffusers_run, samplekit_run  # noqa: E402
from samplekit.diffusers.conventions import (  # noqa: E402
    alphas_cumprod_of,
    network_timestep,
    scheduler_grid,
    scheduler_solver,
    timestep_rule_of,
)
from samplekit.discrete import DiscreteVPSDE  # noqa: E402
from samplekit.errors import SamplekitError  # noqa: E402

TOL = 1e-4
SD = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000)
SPACINGS = [("linspace", 0), ("leading", 1), ("trailing", 0)]
PREDICTIONS = ["epsilon", "v_prediction"]
SIGMAS = [{}, {"use_karras_sigmas": True}, {"use_exponential_sigmas": True}, {"use_beta_sigmas": True}]
#: (scheduler class, config) pairs, each checked at every spacing and prediction type
CONFIGS = [
    ("DDIMScheduler", {"clip_sample": False, "set_alpha_to_one": False}),
    ("DDIMScheduler", {"clip_sample": False, "set_alpha_to_one": True}),
    ("DDIMScheduler", {"clip_sample": False, "rescale_betas_zero_snr": True, "set_alpha_to_one": True}),
    ("DDIMScheduler", {"clip_sample": False, "rescale_betas_zero_snr": True, "set_alpha_to_one": False}),
    *[
        ("DPMSolverMultistepScheduler", {**s, "final_sigmas_type": f})
        for s, f in itertools.product(SIGMAS, ["zero", "sigma_min"])
    ],
    *[
        ("DPMSolverMultistepScheduler", {**s, "solver_order": 3, "final_sigmas_type": f})
        for s, f in zip(SIGMAS, ["sigma_min", "zero"] * 2)
    ],
    ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True, "rescale_betas_zero_snr": True}),
    *[("EulerDiscreteScheduler", s) for s in SIGMAS],
    ("UniPCMultistepScheduler", {"final_sigmas_type": "sigma_min"}),
    ("DEISMultistepScheduler", {}),
    ("DEISMultistepScheduler", {"use_karras_sigmas": True}),
    ("DEISMultistepScheduler", {"use_exponential_sigmas": True, "solver_order": 2}),
]
#: step counts the default run rotates through: 4, 50, and non-divisors of 1000
ROTATION = [7, 12, 23, 4, 13, 30, 17, 50, 9, 38, 15, 27, 6, 44, 21, 11, 33, 19]
CASES = [
    (cls, config, spacing, pred)
    for (cls, config), spacing, pred in itertools.product(CONFIGS, SPACINGS, PREDICTIONS)
    if not (config.get("rescale_betas_zero_snr") and pred == "epsilon")  # eps is undefined at alpha = 0
]
#: the default run: two (spacing, prediction) cases of every configuration, shifted from one configuration to
#: the next so that every spacing and prediction type meets every scheduler and sigma option
DEFAULT = [
    (
        cls,
        config,
        SPACINGS[(c + k) % 3],
        "v_prediction" if config.get("rescale_betas_zero_snr") else PREDICTIONS[(c + k) % 2],
    )
    for c, (cls, config) in enumerate(CONFIGS)
    for k in (0, 1)
]
DEFAULT = [(*case, ROTATION[i % len(ROTATION)]) for i, case in enumerate(DEFAULT)]


def case_id(case) -> str:
    cls, config, (spacing, _), pred, *steps = case
    opts = ",".join(f"{k}={v}" for k, v in config.items() if k != "clip_sample")
    return f"{cls.removesuffix('Scheduler')}[{opts}]-{spacing}-{pred}" + (f"-{steps[0]}" if steps else "")


@pytest.fixture(scope="module")
def unet():
    return tiny.class_unet()


def build(cls, config, spacing, pred):
    return getattr(diffusers, cls)(
        **SD, timestep_spacing=spacing[0], steps_offset=spacing[1], prediction_type=pred, **config
    )


def check_case(unet, cls, config, spacing, pred, steps_list):
    scheduler = build(cls, config, spacing, pred)
    model = sk.load_model(unet, loader="diffusers", scheduler=scheduler)
    latents = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    labels, null = torch.tensor([3, 7]), torch.tensor([0, 0])
    rescale = 0.7 if pred == "v_prediction" else 0.0
    worst = None
    for steps in steps_list:
        scheduler.set_timesteps(steps)
        if int(scheduler.timesteps[1]) == int(scheduler.timesteps[0]):  # diffusers skips a step, then fails
            with pytest.raises(SamplekitError, match="twice"):
                samplekit_run(model, scheduler, latents, labels, null, 3.0, rescale, steps)
            continue
        first, second = (int(k) for k in scheduler.timesteps[:2])
        if (
            config.get("rescale_betas_zero_snr")
            and cls == "DDIMScheduler"
            and first == 999
            and first - 1000 // steps != second
        ):
            with pytest.raises(SamplekitError, match="alpha_T = 0"):  # its first step lands between grid times
                samplekit_run(model, scheduler, latents, labels, null, 3.0, rescale, steps)
            continue
        want = diffusers_run(unet, copy.deepcopy(scheduler), latents, labels, null, 3.0, rescale, steps)
        if bool(want.isnan().any()):  # diffusers' own order-3 step of length 0 at the end
            with pytest.raises(SamplekitError, match="h = 0"):
                samplekit_run(model, scheduler, latents, labels, null, 3.0, rescale, steps)
            continue
        res = samplekit_run(model, scheduler, latents, labels, null, 3.0, rescale, steps)
        err = ((res.samples - want).abs().max() / want.abs().max().clamp_min(1)).item()
        assert err <= TOL, f"{steps} steps: relative max difference {err:.3g} > {TOL}"
        worst = err if worst is None else max(worst, err)
    return worst


@pytest.mark.parametrize("case", DEFAULT, ids=case_id)
def test_a_diffusers_scheduler_config_is_reproduced(unet, case):
    *head, steps = case
    worst = check_case(unet, *head, [steps])
    print("refused, as asserted" if worst is None else f"worst {worst:.2e}")


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_a_diffusers_scheduler_config_is_reproduced_at_every_step_count(unet, case):
    worst = check_case(unet, *case, range(4, 51))
    print("all refused, as asserted" if worst is None else f"worst {worst:.2e}")


RULE_CLASSES = [
    "DPMSolverMultistepScheduler",
    "DPMSolverSinglestepScheduler",
    "UniPCMultistepScheduler",
    "DEISMultistepScheduler",
    "EulerDiscreteScheduler",
    "LMSDiscreteScheduler",
]


@pytest.mark.parametrize("cls", RULE_CLASSES)
@pytest.mark.parametrize("sigmas", SIGMAS, ids=lambda s: next(iter(s), "training_sigmas"))
def test_the_network_is_fed_the_schedulers_own_timestep(cls, sigmas):
    """Step counts 4, 9, ..., 49 and 50 (the slow test: all of 4..50)."""
    check_timesteps(cls, sigmas, [*range(4, 50, 5), 50])


@pytest.mark.slow
@pytest.mark.parametrize("cls", RULE_CLASSES)
@pytest.mark.parametrize("sigmas", SIGMAS, ids=lambda s: next(iter(s), "training_sigmas"))
def test_the_network_is_fed_the_schedulers_own_timestep_at_every_step_count(cls, sigmas):
    check_timesteps(cls, sigmas, range(4, 51))


def check_timesteps(cls, sigmas, step_counts):
    """network_timestep at scheduler_grid's times equals scheduler.timesteps (rounded / truncated / fractional
    as the scheduler makes them), every spacing; between training timesteps the rules differ (so a wrong rule
    is caught).  A grid starting on a repeated timestep is refused (diffusers' loop mis-indexes it)."""
    spacings = SPACINGS if cls != "DPMSolverSinglestepScheduler" else [("linspace", 0)]
    for spacing, offset in spacings:
        extra = {} if cls == "DPMSolverSinglestepScheduler" else {"timestep_spacing": spacing, "steps_offset": offset}
        scheduler = getattr(diffusers, cls)(**SD, **extra, **sigmas)
        config = dict(scheduler.config)
        sde = DiscreteVPSDE(alphas_cumprod_of(config, cls))
        rule = timestep_rule_of(config, cls)
        for steps in step_counts:
            scheduler.set_timesteps(steps)
            if int(scheduler.timesteps[1]) == int(scheduler.timesteps[0]):
                with pytest.raises(SamplekitError, match="twice"):
                    scheduler_grid(scheduler, sde)
                continue
            ts, _ = scheduler_grid(scheduler, sde)
            m = len(scheduler.timesteps)
            got = network_timestep(sde, ts[:m], rule)
            assert torch.equal(got, scheduler.timesteps.to(torch.float64).to(got.dtype)) or torch.allclose(
                got, scheduler.timesteps.to(torch.float64), rtol=0, atol=1e-3
            ), f"{spacing}, {steps} steps: {got.tolist()} != {scheduler.timesteps.tolist()}"
    t = torch.tensor([0.43721], dtype=torch.float64)  # between training timesteps: the rules differ
    values = {r: float(network_timestep(sde, t, r)) for r in ("linear", "sigma", "log_sigma")}
    assert len({round(v, 6) for v in values.values()}) == 3, values


def test_an_evaluation_between_training_timesteps_is_not_moved_onto_one():
    """No snapping beyond floating-point rounding: 1e-6 timesteps off the grid stays 1e-6 off (the old 1e-3
    snap moved it), while the float32 time of a training timestep lands on it exactly."""
    sde = DiscreteVPSDE(alphas_cumprod_of(SD))
    n = torch.tensor([123.0, 500.0, 998.0], dtype=torch.float64)
    off = sde.time_of(n + 1e-6)
    assert torch.allclose(sde.timestep(off) - n, torch.full_like(n, 1e-6), rtol=1e-6, atol=0)
    assert torch.equal(sde.timestep(sde.time_of(n).float()), n.float())
    alpha, _ = sde.marginal(off)
    exact = sde.alphas_cumprod[123].sqrt()
    assert 0 < float(exact - alpha[0]) < 1e-8  # a hair noisier than timestep 123, not equal to it


def test_zero_terminal_snr_keeps_alpha_T_zero_for_ddim_and_the_floor_for_the_others():
    config = {**SD, "rescale_betas_zero_snr": True}
    exact = DiscreteVPSDE(alphas_cumprod_of(config, "DDIMScheduler"))
    floored = DiscreteVPSDE(alphas_cumprod_of(config, "EulerDiscreteScheduler"))
    assert exact.alpha_T_is_zero and not floored.alpha_T_is_zero
    assert float(floored.alphas_cumprod[-1]) == 2.0**-24
    t = torch.tensor([0.9995, 0.5, exact.t_min], dtype=torch.float64)
    lam = exact.log_snr(t)
    assert torch.allclose(exact.t_from_log_snr(lam), t, rtol=1e-12, atol=0)  # the last interval inverts too
    assert float(exact.marginal(torch.tensor(1.0, dtype=torch.float64))[0]) == 0.0


def test_what_samplekit_does_not_reproduce_is_refused_with_the_reason(unet):
    refused = [
        (diffusers.UniPCMultistepScheduler(**SD), "final_sigmas_type"),  # its default, final zero
        (diffusers.DPMSolverMultistepScheduler(**SD, algorithm_type="sde-dpmsolver++"), "dpmsolver\\+\\+"),
        (diffusers.DPMSolverMultistepScheduler(**SD, solver_type="heun"), "midpoint"),
        (diffusers.HeunDiscreteScheduler(**SD), "no samplekit twin"),
        (diffusers.DPMSolverSinglestepScheduler(**SD), "no samplekit twin"),
        (diffusers.EulerAncestralDiscreteScheduler(**SD), "no samplekit twin"),
        (diffusers.LMSDiscreteScheduler(**SD), "no samplekit twin"),
        (diffusers.KDPM2DiscreteScheduler(**SD), "no samplekit twin"),
        (
            diffusers.UniPCMultistepScheduler(**SD, final_sigmas_type="sigma_min", use_karras_sigmas=True),
            "corrector-only",
        ),
        (diffusers.EulerDiscreteScheduler(**SD, rescale_betas_zero_snr=True), "rescale_betas_zero_snr"),
    ]
    for scheduler, reason in refused:
        scheduler.set_timesteps(12)
        with pytest.raises(SamplekitError, match=reason):
            scheduler_solver(scheduler)
    karras = diffusers.DPMSolverMultistepScheduler(**SD, use_karras_sigmas=True)
    karras.set_timesteps(12)
    plain = sk.load_model(unet, loader="diffusers", scheduler=diffusers.DPMSolverMultistepScheduler(**SD))
    with pytest.raises(SamplekitError, match="network_timesteps='log_sigma_round'"):
        scheduler_grid(karras, plain)  # fed fractional timesteps where the scheduler rounds: refused
    fixed = sk.load_model(
        unet,
        loader="diffusers",
        scheduler=diffusers.DPMSolverMultistepScheduler(**SD),
        network_timesteps="log_sigma_round",
    )
    ts, options = scheduler_grid(karras, fixed)
    assert options == {"denoise_final": True} and len(ts) == 12
    zero_snr = diffusers.DDIMScheduler(
        **SD, rescale_betas_zero_snr=True, prediction_type="v_prediction", clip_sample=False
    )
    zero_snr.set_timesteps(12)
    with pytest.raises(SamplekitError, match="zero terminal SNR"):
        scheduler_grid(zero_snr, fixed)  # the model's abar_{N-1} is not the scheduler's
    with pytest.raises(SamplekitError, match="network_timesteps"):
        sk.load_model(unet, loader="diffusers", scheduler=karras.config, network_timesteps="nearest")


def test_the_peer_conventions_are_solver_options_the_plain_names_keep_samplekits():
    scheduler = diffusers.DPMSolverMultistepScheduler(**SD, solver_order=3, final_sigmas_type="sigma_min")
    scheduler.set_timesteps(20)
    name, options = scheduler_solver(scheduler)
    assert name == "dpmpp_3m" and options["midpoint_weights"] is True
    assert options["orders"] == (1, 2) + (3,) * 18  # no lowering from 15 steps on, unlike samplekit's rule
    assert sk.get_solver("dpmpp_3m").midpoint_weights is False
    assert sk.get_solver("dpmpp_3m").plan_orders(20)[-2:] == (2, 1)
    scheduler = diffusers.DDIMScheduler(**SD, timestep_spacing="trailing")
    scheduler.set_timesteps(12)
    assert scheduler_solver(scheduler) == ("ddim", {"stride": 83 / 1000})
    assert sk.get_solver("ddim").stride is None
    with pytest.raises(SamplekitError, match="orders"):
        sk.get_solver("dpmpp_2m", orders=(2, 2))  # step 0 has no earlier output
    with pytest.raises(SamplekitError, match="stride"):
        sk.get_solver("ddim", stride=-0.1)
