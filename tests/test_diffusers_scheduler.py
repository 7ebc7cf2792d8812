"""``SamplekitScheduler`` inside diffusers' own pipelines (tiny random-weight SD / SDXL / SD3, CFG on, float32).

(a) A solver whose algorithm is a diffusers scheduler's, on that scheduler's grid (``conventions.scheduler_grid``
    / ``scheduler_solver``), gives the pipeline's latents of that scheduler (DDIM, DPM-Solver++(2M), UniPC,
    Euler, Heun, Euler ancestral with the same generator, FlowMatchEuler).
(b) Every fixed-step solver of the registry gives, through the pipeline, the latents ``sk.sample`` gives on
    ``sk.load_model(pipe)`` with the same guidance, grid (``scheduler.grid``), x_T and seed.
(c) img2img (``add_noise`` + ``set_begin_index``) equals ``sk.sample`` from the pipeline's noised latents;
    inpainting blends through ``add_noise`` and, with DDIM, equals diffusers' DDIMScheduler.

Tolerance: max |difference| <= 1e-4 max(1, max |latents|) (float32 rounding of the latents' scale); the
figures reached are printed (pytest -s) and quoted in the README of benchmarks/pipelines.
"""

from __future__ import annotations

import gc
import threading

import pytest
import torch

import samplekit as sk

diffusers = pytest.importorskip("diffusers")
pytest.importorskip("transformers")  # the Stable Diffusion pipelines import it (no text encoder is built)

import diffusers_tiny as tiny  # noqa: E402
from samplekit.diffusers import SamplekitScheduler  # noqa: E402
from samplekit.diffusers.conventions import scheduler_grid, scheduler_solver  # noqa: E402
from samplekit.errors import SamplekitError  # noqa: E402
from samplekit.plugins import get_registry  # noqa: E402

TOL = 1e-4
SCALE = 3.0
FIXED_STEP = sorted(c.name for c in sk.available("solver") if not get_registry().get("solver", c.name).factory.adaptive)
ADAPTIVE = sorted(c.name for c in sk.available("solver") if get_registry().get("solver", c.name).factory.adaptive)


def assert_close(got, want, what):
    err, scale = (got - want).abs().max().item(), max(1.0, want.abs().max().item())
    print(f"{what}: max abs difference {err:.2e} (max |latent| {scale:.3g})")
    assert err <= TOL * scale, f"{what}: max abs difference {err:.3g} > {TOL} x {scale:.3g}"


def randn(seed, *shape):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def no_worker_threads() -> bool:
    return not any(t.name.startswith("samplekit-") and t.is_alive() for t in threading.enumerate())


class SD:
    """A tiny SD pipeline, its inputs, and the loaded, guided samplekit model of the same network."""

    def __init__(self, kind="ddim"):
        self.pipe = tiny.sd_pipeline(tiny.sd_scheduler(kind))
        self.config = self.pipe.scheduler.config
        self.emb, self.neg = randn(1, 2, tiny.TOKENS, tiny.CROSS_DIM), randn(2, 2, tiny.TOKENS, tiny.CROSS_DIM)
        self.latents = randn(3, 2, 4, tiny.LATENT, tiny.LATENT)
        model = sk.load_model(self.pipe)
        self.guided = sk.guidance.classifier_free(
            model.condition(encoder_hidden_states=self.emb), model.condition(encoder_hidden_states=self.neg), SCALE
        )

    def run(self, scheduler, steps, generator=None, **kw):
        self.pipe.scheduler = scheduler
        call = dict(prompt_embeds=self.emb, negative_prompt_embeds=self.neg, latents=self.latents)
        call.update(guidance_scale=SCALE, output_type="latent", num_inference_steps=steps, generator=generator, **kw)
        return self.pipe(**call).images


@pytest.fixture(scope="module")
def sd():
    return SD()


# --- (b) every fixed-step solver through the pipeline = sk.sample on the loaded model --------------------------
@pytest.mark.parametrize("solver", FIXED_STEP)
def test_every_fixed_step_solver_in_the_sd_pipeline_equals_sk_sample(sd, solver):
    sched = SamplekitScheduler.from_config(sd.config, solver=solver)
    got = sd.run(sched, 3, generator=torch.Generator().manual_seed(5))
    want = sk.sample(sd.guided, solver, x_T=sd.latents, ts=sched.grid, seed=5, progress=False)
    # the pipeline's calls are the solver's evaluations (CFG: 2 each), plus a leading one for a solver whose
    # first call is not at x_T (see samplekit.diffusers.evaluations)
    assert want.nfe == 2 * (len(sched.timesteps) - sched.evaluations.leading)
    assert sched.evaluations.leading == (solver == "annealed_langevin")
    assert_close(got, want.samples, f"SD + {solver}")
    assert no_worker_threads()


OPTION_CASES = [
    ("ddim", {"eta": 0.7}),
    ("unipc", {"solver_order": 3, "variant": "bh1"}),
    ("deis", {"solver_order": 2}),
    ("lms", {"solver_order": 3}),
    ("dpmpp_2m_sde", {"eta": 0.5, "solver_type": "heun"}),
    ("dpmpp_sde", {"r": 0.3}),
    ("restart", {"s_noise": 0.9}),
    ("edm_heun", {"S_churn": 5.0}),
    ("euler_ancestral", {"eta": 0.5, "denoise_final": True}),
]


@pytest.mark.parametrize("solver, options", OPTION_CASES)
@pytest.mark.parametrize("schedule", [None, "karras"])
def test_solver_options_and_schedules_reach_the_pipeline(sd, solver, options, schedule):
    sched = SamplekitScheduler.from_config(sd.config, solver=solver, schedule=schedule, **options)
    got = sd.run(sched, 4, generator=torch.Generator().manual_seed(6))
    extra = {"schedule": schedule} if schedule else {}
    want = sk.sample(
        sd.guided, solver, x_T=sd.latents, ts=sched.grid, seed=6, progress=False, **options
    )  # ts: no schedule=
    assert_close(got, want.samples, f"SD + {solver} {options} {schedule}")
    if schedule:
        nfe = 2 * (4 * sched.order + int(options.get("denoise_final", False)))  # CFG: 2 calls an evaluation
        model_grid = sk.sample(sd.guided, solver, x_T=sd.latents, nfe=nfe, progress=False, **options, **extra)
        assert torch.allclose(sched.grid, model_grid.ts.to(torch.float64), rtol=0, atol=1e-12)


DENSE = {"dpmpp_3m": [*range(2, 17), 25, 40], "dpm_2": list(range(2, 9))}
DENSE_SLOW = {"dpmpp_3m": list(range(2, 51)), "dpm_2": list(range(2, 51)), "restart": list(range(2, 31))}


@pytest.mark.parametrize("cases", [DENSE, pytest.param(DENSE_SLOW, marks=pytest.mark.slow)], ids=["default", "full"])
def test_a_dense_range_of_step_counts_in_a_ddpm_pipeline(cases):
    """DDPMPipeline (unconditional, a tiny UNet2DModel), a multistep and a two-stage solver at every step count
    2..16 (2..12) and beyond (the slow case: every count 2..50): the pipeline's images are sk.sample's, mapped
    to [0, 1] as the pipeline maps them."""
    pipe = diffusers.DDPMPipeline(unet=tiny.unet2d(), scheduler=diffusers.DDPMScheduler(clip_sample=False))
    pipe.set_progress_bar_config(disable=True)
    model = sk.load_model(pipe)
    config = pipe.scheduler.config
    worst = 0.0
    for solver, counts in cases.items():
        for steps in counts:
            x_T = randn(steps, 2, 1, tiny.LATENT, tiny.LATENT)
            pipe.scheduler = SamplekitScheduler.from_config(config, solver=solver, schedule="karras")
            got = pipe(
                batch_size=2,
                generator=torch.Generator().manual_seed(steps),
                num_inference_steps=steps,
                output_type="np",
            ).images
            assert len(pipe.scheduler.grid) == steps + 1
            want = sk.sample(model, solver, x_T=x_T, ts=pipe.scheduler.grid, seed=steps, progress=False).samples
            want = (want / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()
            worst = max(worst, float(abs(got - want).max()))
    print(f"DDPMPipeline, {cases}: max abs difference {worst:.2e} (images in [0, 1])")
    assert worst <= TOL


def test_an_optimized_grid_through_ts(sd):
    ts = sk.optimize_schedule(sd.guided, "dpmpp_2m", nfe=4, num_samples=2, max_nfe=150, teacher_tol=1e-3)
    sched = SamplekitScheduler.from_config(sd.config, solver="dpmpp_2m", ts=ts.tolist())
    got = sd.run(sched, len(ts) - 1)
    want = sk.sample(sd.guided, "dpmpp_2m", x_T=sd.latents, ts=ts, progress=False).samples
    assert torch.equal(sched.grid, ts.to(torch.float64))
    assert_close(got, want, "SD + dpmpp_2m on an optimized grid")
    with pytest.raises(SamplekitError, match="num_inference_steps"):
        sd.run(sched, len(ts) + 1)


# --- (a) diffusers' own schedulers --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["ddim", "dpmpp_2m", "unipc"])
@pytest.mark.parametrize("steps", [3, 4, 7, pytest.param(20, marks=pytest.mark.slow)])
def test_the_twin_of_a_diffusers_scheduler_gives_its_latents(sd, kind, steps):
    ref = tiny.sd_scheduler(kind)
    want = sd.run(ref, steps)
    ts, grid_options = scheduler_grid(ref, sd.guided.sde)
    name, options = scheduler_solver(ref)
    sched = SamplekitScheduler.from_config(ref.config, solver=name, ts=ts.tolist(), **grid_options, **options)
    got = sd.run(sched, len(ts) - 1)
    assert_close(got, want, f"SD + {kind} twin ({steps} steps)")


def k_config(**extra):
    """SD's schedule with integer timesteps ending at 0 (leading spacing, no offset), so diffusers' sigmas sit on
    training timesteps and its last step, to sigma = 0, is the x0 prediction at t_min (``denoise_final``)."""
    return dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", timestep_spacing="leading", **extra)


@pytest.mark.parametrize(
    "scheduler_class, solver",
    [("EulerDiscreteScheduler", "ddim"), ("EulerAncestralDiscreteScheduler", "euler_ancestral")],
)
@pytest.mark.parametrize("steps", [3, 5, 10])
def test_k_diffusion_style_schedulers_are_reproduced(sd, scheduler_class, solver, steps):
    ref = getattr(diffusers, scheduler_class)(**k_config())
    want = sd.run(ref, steps, generator=torch.Generator().manual_seed(9))
    ref.set_timesteps(steps)
    ts = sd.guided.sde.time_of(torch.as_tensor(ref.timesteps, dtype=torch.float64))
    sched = SamplekitScheduler.from_config(ref.config, solver=solver, ts=ts.tolist(), denoise_final=True)
    got = sd.run(sched, len(ts) - 1, generator=torch.Generator().manual_seed(9))
    assert len(sched.timesteps) == len(ref.timesteps)
    assert_close(got, want, f"SD + {scheduler_class} twin {solver} ({steps} steps)")


@pytest.mark.parametrize("steps", [3, 5, 10])
def test_diffusers_heun_steps_are_reproduced(sd, steps):
    """HeunDiscreteScheduler and ``edm_heun`` on the same grid take the same Heun steps (2 calls each, the second
    at the next timestep: ``timesteps`` like diffusers'); they differ only in the last step, where diffusers
    takes a Heun step onto sigma_min and then Euler to sigma = 0, EDM's rule (samplekit's) Euler onto sigma_min.
    Compared after every full Heun step: diffusers' latents are x / alpha (``init_noise_sigma`` > 1)."""
    ref = diffusers.HeunDiscreteScheduler(**k_config())
    seen: dict = {}

    def keep(pipe, i, t, kwargs):
        seen.setdefault(type(pipe.scheduler).__name__, {})[i] = kwargs["latents"].clone()
        return kwargs

    sd.run(ref, steps, callback_on_step_end=keep)
    ts = sd.guided.sde.time_of(torch.as_tensor(ref.timesteps, dtype=torch.float64).unique_consecutive())
    sched = SamplekitScheduler.from_config(ref.config, solver="edm_heun", ts=ts.tolist())
    sd.run(sched, len(ts) - 1, callback_on_step_end=keep)
    assert torch.equal(sched.timesteps, ref.timesteps[:-2].float()), (
        sched.timesteps,
        ref.timesteps,
    )  # all but the last step
    ours, theirs = seen["SamplekitScheduler"], seen["HeunDiscreteScheduler"]
    for k in range(1, steps - 1):  # call 2k - 1 completes Heun step k - 1: x at ts[k]
        alpha, _ = sd.guided.sde.marginal(ts[k])
        assert_close(ours[2 * k - 1], float(alpha) * theirs[2 * k - 1], f"SD + Heun twin, x after step {k} of {steps}")


# --- SDXL and SD3 ---------------------------------------------------------------------------------------------
def sdxl_call(latents):
    emb, neg = randn(9, 2, tiny.TOKENS, 64), randn(10, 2, tiny.TOKENS, 64)
    pooled, neg_pooled = randn(11, 2, 32), randn(12, 2, 32)
    size = 2 * tiny.LATENT
    call = dict(prompt_embeds=emb, negative_prompt_embeds=neg, pooled_prompt_embeds=pooled)
    call.update(
        negative_pooled_prompt_embeds=neg_pooled, latents=latents, guidance_scale=SCALE, height=size, width=size
    )
    time_ids = torch.tensor([[size, size, 0, 0, size, size]], dtype=torch.float32)
    cond = dict(encoder_hidden_states=emb, text_embeds=pooled, time_ids=time_ids)
    uncond = dict(encoder_hidden_states=neg, text_embeds=neg_pooled, time_ids=time_ids)
    return call, cond, uncond


@pytest.mark.parametrize("solver", ["dpmpp_3m", "dpmpp_2s", "restart", "euler_ancestral"])
def test_sdxl_pipeline(solver):
    pipe = tiny.sdxl_pipeline(tiny.sd_scheduler("dpmpp_2m"))
    latents = randn(13, 2, 4, tiny.LATENT, tiny.LATENT)
    call, cond, uncond = sdxl_call(latents)
    pipe.scheduler = SamplekitScheduler.from_config(pipe.scheduler.config, solver=solver)
    g = torch.Generator().manual_seed(4)
    got = pipe(**call, num_inference_steps=4, output_type="latent", generator=g).images
    model = sk.load_model(pipe)
    guided = sk.guidance.classifier_free(model.condition(**cond), model.condition(**uncond), SCALE)
    want = sk.sample(guided, solver, x_T=latents, ts=pipe.scheduler.grid, seed=4, progress=False).samples
    assert_close(got, want, f"SDXL + {solver}")


class SD3:
    def __init__(self, shift=3.0):
        self.pipe = tiny.sd3_pipeline(shift=shift)
        self.config = self.pipe.scheduler.config
        emb, neg = randn(6, 2, tiny.TOKENS, 32), randn(7, 2, tiny.TOKENS, 32)
        pooled, neg_pooled = randn(8, 2, 64), randn(9, 2, 64)
        self.latents = randn(10, 2, 4, tiny.LATENT, tiny.LATENT)
        self.call = dict(prompt_embeds=emb, negative_prompt_embeds=neg, pooled_prompt_embeds=pooled)
        self.call.update(negative_pooled_prompt_embeds=neg_pooled, latents=self.latents, guidance_scale=SCALE)
        self.model = model = sk.load_model(self.pipe)
        self.cond = model.condition(encoder_hidden_states=emb, pooled_projections=pooled)
        self.guided = sk.guidance.classifier_free(
            self.cond,
            model.condition(encoder_hidden_states=neg, pooled_projections=neg_pooled),
            SCALE,
        )

    def run(self, scheduler, steps, **kw):
        self.pipe.scheduler = scheduler
        return self.pipe(**self.call, num_inference_steps=steps, output_type="latent", **kw).images


@pytest.fixture(scope="module")
def sd3():
    return SD3()


@pytest.mark.parametrize("steps", [2, 4, 9])
def test_sd3_flow_match_euler_is_reproduced(sd3, steps):
    from diffusers import FlowMatchEulerDiscreteScheduler

    ref = FlowMatchEulerDiscreteScheduler(shift=3.0)
    want = sd3.run(ref, steps)
    ts, options = scheduler_grid(ref, sd3.guided.sde)
    sched = SamplekitScheduler.from_config(ref.config, solver="ode_euler", ts=ts.tolist(), **options)
    assert sched.flow
    got = sd3.run(sched, len(ts) - 1)
    assert_close(got, want, f"SD3 + FlowMatchEuler twin ({steps} steps)")


@pytest.mark.parametrize("solver", ["dpmpp_2m", "unipc", "dpm_2", "edm_heun", "dpmpp_2s_ancestral"])
def test_sd3_pipeline_with_its_shift_equals_sk_sample(sd3, solver):
    sched = SamplekitScheduler.from_config(sd3.config, solver=solver)
    torch.manual_seed(2)  # SD3's pipeline does not pass its generator to step(): noise from torch's global generator
    got = sd3.run(sched, 4)
    # the grid is sk.sample's on the loaded model (its shift 3 applied; a guidance wrapper does not carry it)
    model_grid = sk.sample(
        sd3.cond, solver, x_T=sd3.latents, nfe=4 * sched.order + 1, progress=False, denoise_final=True
    )
    assert torch.allclose(sched.grid, model_grid.ts.to(torch.float64), atol=1e-12)
    want = sk.sample(sd3.guided, solver, x_T=sd3.latents, ts=sched.grid, seed=2, progress=False, denoise_final=True)
    assert_close(got, want.samples, f"SD3 + {solver}")


def test_dynamic_shifting_takes_mu():
    from diffusers import FlowMatchEulerDiscreteScheduler

    config = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True).config
    sched = SamplekitScheduler.from_config(config, solver="ode_euler")
    with pytest.raises(SamplekitError, match="mu"):
        sched.set_timesteps(4)
    sigmas = torch.linspace(1.0, 0.25, 4)
    sched.set_timesteps(sigmas=sigmas.tolist(), mu=0.8)
    ref = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True)
    ref.set_timesteps(sigmas=sigmas.tolist(), mu=0.8)
    # Euler + final denoise on the shifted sigmas: the reference's timesteps, one call each
    assert torch.allclose(sched.timesteps, ref.timesteps, rtol=1e-6)


# --- (c) img2img and inpainting ---------------------------------------------------------------------------------
class Spy:
    """A forward pre-hook on a UNet: counts its calls and keeps the latents of the first (first half of the CFG
    batch)."""

    def __init__(self, unet):
        self.first, self.calls = None, 0
        self.handle = unet.register_forward_pre_hook(self)

    def __call__(self, module, args):
        if self.first is None:
            self.first = args[0][: args[0].shape[0] // 2].clone()
        self.calls += 1


def guided_for(pipe, emb, neg):
    model = sk.load_model(pipe)
    return sk.guidance.classifier_free(
        model.condition(encoder_hidden_states=emb), model.condition(encoder_hidden_states=neg), SCALE
    )


def image(seed, n=1):
    return randn(seed, n, 3, 2 * tiny.LATENT, 2 * tiny.LATENT).clamp(-2, 2) / 4 + 0.5


@pytest.mark.parametrize("solver", ["dpmpp_2m", "edm_heun", "dpmpp_3s"])
def test_img2img_starts_from_add_noise_at_the_begin_index(sd, solver):
    from diffusers import StableDiffusionImg2ImgPipeline

    pipe = StableDiffusionImg2ImgPipeline(**{**sd.pipe.components, "image_encoder": None})
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = SamplekitScheduler.from_config(sd.config, solver=solver)
    spy = Spy(pipe.unet)
    try:
        call = dict(prompt_embeds=sd.emb[:1], negative_prompt_embeds=sd.neg[:1], image=image(14), strength=0.6)
        got = pipe(
            **call,
            num_inference_steps=5,
            guidance_scale=SCALE,
            output_type="latent",
            generator=torch.Generator().manual_seed(1),
        ).images
    finally:
        spy.handle.remove()
    sched = pipe.scheduler
    start = sched.begin_index
    assert start == 2 * sched.order and spy.calls == len(sched.timesteps) - start
    step = sched.evaluations.steps[start]
    # the pipeline noised its image latents to the first remaining call's time with add_noise
    assert sched.time_of(sched.timesteps[start]).item() == pytest.approx(float(sched.grid[step]), abs=1e-6)
    want = sk.sample(
        guided_for(sd.pipe, sd.emb[:1], sd.neg[:1]), solver, x_T=spy.first, ts=sched.grid[step:], progress=False
    ).samples
    assert_close(got, want, f"SD img2img + {solver}")


def test_add_noise_is_the_marginal_at_the_timestep(sd):
    ref = tiny.sd_scheduler("ddim")
    sched = SamplekitScheduler.from_config(ref.config, solver="ddim")
    x0, noise = randn(1, 3, 4, 2, 2), randn(2, 3, 4, 2, 2)
    steps = torch.tensor([0, 500, 999])
    assert torch.allclose(sched.add_noise(x0, noise, steps), ref.add_noise(x0, noise, steps), atol=1e-6)


def test_scale_noise_is_flow_matchings(sd3):
    from diffusers import FlowMatchEulerDiscreteScheduler

    ref = FlowMatchEulerDiscreteScheduler(shift=3.0)
    ref.set_timesteps(6)
    sched = SamplekitScheduler.from_config(ref.config, solver="dpmpp_2m")
    assert sched.flow and sched.compatibles == [FlowMatchEulerDiscreteScheduler]
    x0, noise = randn(3, 2, 4, 2, 2), randn(4, 2, 4, 2, 2)
    for t in ref.timesteps[[0, 3, 5]]:
        want = ref.scale_noise(x0, t[None], noise)
        assert torch.allclose(sched.scale_noise(x0, t[None], noise), want, atol=1e-6)


@pytest.mark.parametrize("strength", [1.0, 0.7])
def test_inpainting_blends_through_add_noise_as_with_ddim(sd, strength):
    """The inpainting pipeline (4-channel UNet) blends the known region back after every step: with DDIM on DDIM's
    grid the blended latents replace the solver's x, exactly as in diffusers' DDIMScheduler."""
    from diffusers import StableDiffusionInpaintPipeline

    pipe = StableDiffusionInpaintPipeline(**{**sd.pipe.components, "image_encoder": None})
    pipe.set_progress_bar_config(disable=True)
    mask = torch.zeros(1, 1, 2 * tiny.LATENT, 2 * tiny.LATENT)
    mask[..., : tiny.LATENT] = 1.0
    call = dict(prompt_embeds=sd.emb[:1], negative_prompt_embeds=sd.neg[:1], image=image(15), mask_image=mask)
    call.update(strength=strength, guidance_scale=SCALE, output_type="latent")
    ref = tiny.sd_scheduler("ddim")
    pipe.scheduler = ref
    want = pipe(**call, num_inference_steps=6, generator=torch.Generator().manual_seed(3)).images
    ts, grid_options = scheduler_grid(ref, sd.guided.sde)
    full = len(ts) - 1
    pipe.scheduler = SamplekitScheduler.from_config(ref.config, solver="ddim", ts=ts.tolist(), **grid_options)
    got = pipe(**call, num_inference_steps=full, generator=torch.Generator().manual_seed(3)).images
    assert_close(got, want, f"SD inpainting (strength {strength}) + ddim twin")
    # and a multi-stage solver runs through the same blending (its boundary states replaced)
    pipe.scheduler = SamplekitScheduler.from_config(ref.config, solver="dpmpp_2s")
    out = pipe(**call, num_inference_steps=4, generator=torch.Generator().manual_seed(3)).images
    assert torch.isfinite(out).all() and out.shape == want.shape


def test_blended_latents_replace_the_state_of_a_one_call_solver(sd):
    """A hand-written loop that changes the latents between calls: for a one-call-a-step solver the change is taken
    as the new x (the result equals ddim restarted from the changed latents on the rest of the grid)."""
    sched = SamplekitScheduler.from_config(sd.config, solver="ddim")
    sched.set_timesteps(4)
    x = sd.latents
    net = sd.guided
    for k, t in enumerate(sched.timesteps):
        tk = sched.time_of(t).to(x.dtype)
        out = net.predict(x, tk).eps
        x = sched.step(out, t, x).prev_sample
        if k == 1:
            changed = x + 0.5
            x = changed
    rest = sk.sample(net, "ddim", x_T=changed, ts=sched.grid[2:], progress=False).samples
    assert_close(x, rest, "ddim continued from changed latents")


# --- generators, threads, modes ---------------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["euler_ancestral", "dpmpp_sde", "sde_srk"])
def test_generators_make_stochastic_solvers_reproducible(sd, solver):
    sched = SamplekitScheduler.from_config(sd.config, solver=solver)
    a = sd.run(sched, 4, generator=torch.Generator().manual_seed(1))
    b = sd.run(sched, 4, generator=torch.Generator().manual_seed(1))
    c = sd.run(sched, 4, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and (a - c).abs().max() > 1e-3


def test_a_list_of_generators_gives_each_sample_its_own_stream(sd):
    sched = SamplekitScheduler.from_config(sd.config, solver="euler_ancestral")
    both = sd.run(sched, 4, generator=[torch.Generator().manual_seed(s) for s in (1, 2)])
    sched.set_timesteps(4)
    x = sd.latents[:1]
    net = sk.guidance.classifier_free(
        sk.load_model(sd.pipe).condition(encoder_hidden_states=sd.emb[:1]),
        sk.load_model(sd.pipe).condition(encoder_hidden_states=sd.neg[:1]),
        SCALE,
    )
    g = [torch.Generator().manual_seed(1)]
    for t in sched.timesteps:
        x = sched.step(net.predict(x, sched.time_of(t).float()).eps, t, x, generator=g).prev_sample
    assert_close(x, both[:1], "sample 0 alone with its own generator")
    sched.set_timesteps(4)
    with pytest.raises(SamplekitError, match="one per sample"):
        sched.step(sd.latents, sched.timesteps[0], sd.latents, generator=[torch.Generator()])


def test_no_worker_thread_outlives_its_run(sd):
    sched = SamplekitScheduler.from_config(sd.config, solver="dpmpp_3m")
    sched.set_timesteps(5)
    x = sd.latents
    x = sched.step(torch.zeros_like(x), sched.timesteps[0], x).prev_sample
    assert not no_worker_threads()
    sched.set_timesteps(5)  # a new run stops the old one
    assert no_worker_threads()
    x = sched.step(torch.zeros_like(x), sched.timesteps[0], sd.latents).prev_sample
    del sched
    gc.collect()
    assert no_worker_threads()


def test_the_worker_runs_in_the_callers_grad_mode(sd):
    sched = SamplekitScheduler.from_config(sd.config, solver="ddim")
    sched.set_timesteps(3)
    out = torch.zeros_like(sd.latents, requires_grad=True)
    with torch.no_grad():
        prev = sched.step(out, sched.timesteps[0], sd.latents).prev_sample
    assert not prev.requires_grad
    sched.set_timesteps(3)
    with torch.enable_grad():
        sched.step(out, sched.timesteps[0], sd.latents)
        prev = sched.step(out, sched.timesteps[1], sd.latents).prev_sample
    assert prev.requires_grad


def test_an_error_in_the_solver_reaches_the_caller(sd):
    sched = SamplekitScheduler.from_config(sd.config, solver="dpmpp_2m")
    sched.set_timesteps(3)
    bad = torch.full_like(sd.latents, float("nan"))
    with pytest.raises(SamplekitError, match="NaN"):
        sched.step(bad, sched.timesteps[0], sd.latents)
    assert no_worker_threads()


# --- config, save / load, bad input -----------------------------------------------------------------------------
def test_save_pretrained_round_trip(sd, tmp_path):
    sched = SamplekitScheduler.from_config(
        sd.config, solver="dpmpp_2s_ancestral", schedule="karras", eta=0.5, schedule_options={"rho": 5.0}
    )
    sched.save_pretrained(tmp_path)
    back = SamplekitScheduler.from_pretrained(tmp_path)
    public = lambda c: {k: v for k, v in c.items() if not k.startswith("_")}  # noqa: E731
    assert public(back.config) == public(sched.config)
    assert back.config.solver_options == {"eta": 0.5} and back.config.source_scheduler == "DDIMScheduler"
    a = sd.run(sched, 3, generator=torch.Generator().manual_seed(0))
    b = sd.run(back, 3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    # and a diffusers scheduler reads the config back (compatibles)
    assert diffusers.DDIMScheduler in sched.compatibles
    assert diffusers.DDIMScheduler.from_config(sched.config).config.beta_schedule == "scaled_linear"


def test_the_config_gives_parametrisation_and_schedule(sd):
    v = SamplekitScheduler.from_config(sd.config, prediction_type="v_prediction", rescale_betas_zero_snr=True)
    v.set_timesteps(3)
    assert v._current.parametrization == "v"
    ref = diffusers.DDPMScheduler(**k_config(rescale_betas_zero_snr=True, prediction_type="v_prediction"))
    abar = v._current.sde.alphas_cumprod
    assert torch.allclose(abar[:-1], ref.alphas_cumprod[:-1].double()) and float(abar[-1]) == 2.0**-24


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"solver": "no_such_solver"}, "no_such_solver"),
        ({"solver": "ddim", "no_such_option": 1}, "no_such_option"),
        ({"solver": "ddim", "schedule": "no_such_schedule"}, "no_such_schedule"),
        ({"clip_sample": True}, "clip_sample"),
        ({"thresholding": True}, "thresholding"),
        ({"prediction_type": "flow_prediction"}, "FlowMatch"),
        ({"prediction_type": "bogus"}, "prediction_type"),
    ],
)
def test_bad_configs_are_refused_with_the_fix(sd, kwargs, match):
    with pytest.raises(SamplekitError, match=match):
        s = SamplekitScheduler.from_config(sd.config, **kwargs)
        s.set_timesteps(3)


@pytest.mark.parametrize("solver", ADAPTIVE)
def test_adaptive_solvers_are_refused(sd, solver):
    with pytest.raises(SamplekitError, match="adaptive"):
        SamplekitScheduler.from_config(sd.config, solver=solver)


def test_bad_step_calls(sd):
    sched = SamplekitScheduler.from_config(sd.config, solver="dpmpp_2m")
    x = sd.latents
    with pytest.raises(SamplekitError, match="set_timesteps"):
        sched.step(x, 10, x)
    sched.set_timesteps(4)
    with pytest.raises(SamplekitError, match="not in scheduler.timesteps"):
        sched.step(x, 123.0, x)
    with pytest.raises(SamplekitError, match="not call 0"):
        sched.step(x, sched.timesteps[1], x)
    with pytest.raises(SamplekitError, match="shape"):
        sched.step(x[:, :2], sched.timesteps[0], x)
    x1 = sched.step(torch.zeros_like(x), sched.timesteps[0], x).prev_sample
    with pytest.raises(SamplekitError, match="latents have shape"):
        sched.step(torch.zeros_like(x1[:1]), sched.timesteps[1], x1[:1])
    for t in sched.timesteps[1:]:
        x1 = sched.step(torch.zeros_like(x1), t, x1).prev_sample
    with pytest.raises(SamplekitError, match="network calls"):
        sched.step(torch.zeros_like(x1), sched.timesteps[-1], x1)
