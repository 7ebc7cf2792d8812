"""samplekit reproduces diffusers' own pipelines: tiny random-weight pipelines (tests/diffusers_tiny.py),
saved with ``save_pretrained`` and loaded with ``sk.load_model(dir)``, the same initial latents and
embeddings, classifier-free guidance on; samplekit walks the pipeline's own grid
(``scheduler_grid(scheduler, model.sde)``: timesteps n -> t = (n + 1) / N, flow sigmas -> t = sigma) with
its own solver, and its latents and decoded images match the pipeline's output (``output_type="latent"``
and ``"pt"``) to 1e-4 in float32.

Conventions matched (see samplekit/diffusers/conventions.py):
* SD 1.x schedule (scaled_linear, ``steps_offset=1``, ``timestep_spacing="leading"``): 4 steps visit
  timesteps 751, 501, 251, 1; DDIM with ``set_alpha_to_one=False`` and DPM-Solver / UniPC with
  ``final_sigmas_type="sigma_min"`` then step to abar_0, i.e. samplekit's t_min (timestep 0): the grid is
  those times plus t_min.  The solver is the scheduler's twin (``scheduler_solver``): DPM-Solver++(2M)
  takes diffusers' own order plan (``orders=``: the last step lowered below 15 steps only; a 20-step case
  checks the longer grid); UniPC lowers it on every grid, as diffusers does.  Every step count, spacing and
  sigma option: tests/test_diffusers_schedulers.py.
* DiTPipeline with its test's ``DDIMScheduler()`` (``set_alpha_to_one=True``, leading spacing, no offset):
  timesteps 750, 500, 250, 0 and a final step to abar = 1, which returns the x0 prediction at timestep 0:
  samplekit's grid ends at t_min (= timestep 0) with ``denoise_final=True``.  DiT's learned sigma (8 output
  channels for 4 latent channels) is cut to its first 4, as the pipeline does.
* SD3 (FlowMatchEulerDiscrete, shift 3): t = sigma; the pipeline's last Euler step sigma_last -> 0 gives
  x - sigma_last u, the x0 prediction at sigma_last, which the loader makes the model's t_min: the grid is
  the sigmas without the final 0, with ``denoise_final=True``.  Solver ``ode_euler`` (Euler in t on the
  flow's drift alpha' x0 + sigma' eps = u).
* SDXL: added_cond_kwargs' entries bound as inputs of their own (``text_embeds=``, ``time_ids=``).
* Guidance: ``sk.guidance.classifier_free(model.condition(...), model.condition(...), scale)``, one batched
  network call per evaluation, as the pipelines do.

Max abs differences measured (float32, guidance 3.0 / DiT 4.0, 4 steps unless said), latents (max |latent|) |
images:  SD + DDIM 4.8e-06 (16) | 3.6e-07;  SD + DPM-Solver++(2M) 6.7e-06 (20) | 3.6e-07, at 20 steps 2.9e-05
(40) | 5.4e-07;  SD + UniPC 1.1e-05 (20) | 3.6e-07;  SD + UniPC + AutoencoderTiny 1.1e-05 (22) | 1.5e-07;
DiT + DDIM 5.3e-05 (86) | 4.2e-07;  SD3 + FlowMatchEuler (shift 3) 9.5e-07 (3.5) | 2.1e-07;
SDXL + DPM-Solver++(2M) 7.6e-06 (19) | 4.2e-07.  All within float32 rounding of the latents' scale.
"""

from __future__ import annotations

import pytest
import torch

import samplekit as sk

diffusers = pytest.importorskip("diffusers")
try:
    import transformers  # noqa: F401  (StableDiffusion(XL/3)Pipeline import it; no text encoder is built)

    HAVE_TRANSFORMERS = True
except ImportError:
    HAVE_TRANSFORMERS = False
needs_transformers = pytest.mark.skipif(
    not HAVE_TRANSFORMERS,
    reason="diffusers' Stable Diffusion pipelines need transformers (make install adds it as a test dependency)",
)

import diffusers_tiny as tiny  # noqa: E402
from samplekit_loaders.diffusers_grid import scheduler_grid, scheduler_solver  # noqa: E402

TOL = 1e-4
STEPS = 4


class CountingModule(torch.nn.Module):
    """Counts calls of the raw diffusers network (and the samples it was called on)."""

    def __init__(self, module):
        super().__init__()
        self.module, self.calls, self.rows = module, 0, 0

    def forward(self, *args, **kwargs):
        self.calls += 1
        self.rows += args[0].shape[0]
        return self.module(*args, **kwargs)


def embeddings(seed: int, shape):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g), torch.randn(*shape, generator=g)


def to_unit(images):
    """Pipelines' postprocessing of decoded images: [-1, 1] -> [0, 1]."""
    return (images / 2 + 0.5).clamp(0, 1)


def samplekit_run(model, cond, uncond, scale, solver, scheduler, x_T, steps=STEPS):
    """The pipeline's grid and the solver twin of its scheduler (checked to be ``solver``), CFG on one network."""
    guided = sk.guidance.classifier_free(model.condition(**cond), model.condition(**uncond), scale=scale)
    scheduler.set_timesteps(steps)
    ts, options = scheduler_grid(scheduler, model.sde)
    name, solver_options = scheduler_solver(scheduler)
    assert name == solver
    return sk.sample(guided, name, x_T=x_T, ts=ts, progress=False, **options, **solver_options)


def assert_close(got, want, what):
    """max |got - want| <= 1e-4 max(1, max |want|): 1e-4 absolute for unit-scale outputs (images, SD and SD3
    latents); relative for the tiny random DiT, whose latents reach ~90 (float32 spacing there is 8e-6)."""
    err, scale = (got - want).abs().max().item(), max(1.0, want.abs().max().item())
    print(f"{what}: max abs difference {err:.2e} (max |want| {scale:.3g})")
    assert err <= TOL * scale, f"{what}: max abs difference {err:.3g} > {TOL} x {scale:.3g}"
    return err


@needs_transformers
@pytest.mark.parametrize("solver, steps", [("ddim", STEPS), ("dpmpp_2m", STEPS), ("unipc", STEPS), ("dpmpp_2m", 20)])
def test_stable_diffusion_pipeline_is_reproduced_with_cfg(tmp_path, solver, steps):
    pipe = tiny.sd_pipeline(tiny.sd_scheduler(solver))
    emb, neg = embeddings(1, (2, tiny.TOKENS, tiny.CROSS_DIM))
    latents = torch.randn(2, 4, tiny.LATENT, tiny.LATENT, generator=torch.Generator().manual_seed(2))
    call = dict(
        prompt_embeds=emb, negative_prompt_embeds=neg, latents=latents, num_inference_steps=steps, guidance_scale=3.0
    )
    want = pipe(**call, output_type="latent").images
    want_images = pipe(**call, output_type="pt").images
    pipe.save_pretrained(tmp_path / "sd")

    model = sk.load_model(tmp_path / "sd")
    assert model.shape == (4, tiny.LATENT, tiny.LATENT) and model.parametrization == "eps"
    counter = CountingModule(model.net.module)
    model.net.module = counter
    res = samplekit_run(
        model,
        {"encoder_hidden_states": emb},
        {"encoder_hidden_states": neg},
        3.0,
        solver,
        pipe.scheduler,
        latents,
        steps,
    )
    assert_close(res.samples, want, f"SD + {solver} ({steps} steps) latents")
    assert_close(to_unit(res.decoded), want_images, f"SD + {solver} ({steps} steps) images")
    # one batched call of 2B rows per step, as the pipeline; counted as 2 evaluations per step
    assert counter.calls == steps and counter.rows == steps * 4 and res.nfe == 2 * steps
    # not trivially equal: guidance changed the result
    plain = sk.sample(model.condition(encoder_hidden_states=emb), solver, x_T=latents, ts=res.ts, progress=False)
    assert (plain.samples - want).abs().max() > 100 * TOL


@needs_transformers
def test_an_autoencoder_tiny_pipeline_decodes_as_the_pipeline_does(tmp_path):
    pipe = tiny.sd_pipeline(tiny.sd_scheduler("unipc"), vae=tiny.tiny_vae())
    emb, neg = embeddings(3, (1, tiny.TOKENS, tiny.CROSS_DIM))
    latents = torch.randn(1, 4, tiny.LATENT, tiny.LATENT, generator=torch.Generator().manual_seed(4))
    call = dict(
        prompt_embeds=emb, negative_prompt_embeds=neg, latents=latents, num_inference_steps=STEPS, guidance_scale=3.0
    )
    want, want_images = pipe(**call, output_type="latent").images, pipe(**call, output_type="pt").images
    pipe.save_pretrained(tmp_path / "sd_tiny_vae")
    model = sk.load_model(tmp_path / "sd_tiny_vae")
    assert type(model.decoder.vae).__name__ == "AutoencoderTiny"
    res = samplekit_run(
        model, {"encoder_hidden_states": emb}, {"encoder_hidden_states": neg}, 3.0, "unipc", pipe.scheduler, latents
    )
    assert_close(res.samples, want, "SD + UniPC + AutoencoderTiny latents")
    assert_close(to_unit(res.decoded), want_images, "SD + UniPC + AutoencoderTiny images")


def test_dit_pipeline_is_reproduced_with_cfg_and_learned_sigma(tmp_path):
    pipe = tiny.dit_pipeline()
    labels, scale = [3, 7], 4.0
    seen = []
    decode = pipe.vae.decode
    pipe.vae.decode = lambda z, *a, **k: seen.append(z.clone()) or decode(z, *a, **k)  # records its input
    want_images = pipe(
        class_labels=labels,
        guidance_scale=scale,
        num_inference_steps=STEPS,
        generator=torch.Generator().manual_seed(5),
        output_type="pt",
    ).images
    want = seen[0] * pipe.vae.config.scaling_factor  # the latents before DiT's 1 / scaling_factor
    pipe.vae.decode = decode
    pipe.save_pretrained(tmp_path / "dit")

    model = sk.load_model(tmp_path / "dit")
    assert model.shape == (4, tiny.LATENT, tiny.LATENT) and model.parametrization == "eps"
    x_T = torch.randn(2, 4, tiny.LATENT, tiny.LATENT, generator=torch.Generator().manual_seed(5))  # DiT's draw
    res = samplekit_run(
        model,
        {"class_labels": torch.tensor(labels)},
        {"class_labels": torch.tensor([1000, 1000])},
        scale,
        "ddim",
        pipe.scheduler,
        x_T,
    )
    assert res.ts[-1] == model.sde.t_min and res.nfe == 2 * STEPS  # 3 steps + the final denoise
    assert_close(res.samples, want, "DiT + DDIM latents")
    assert_close(to_unit(res.decoded), want_images, "DiT + DDIM images")
    other = sk.sample(
        model.condition(class_labels=torch.tensor([1, 2])),
        "ddim",
        x_T=x_T,
        ts=res.ts,
        progress=False,
        denoise_final=True,
    )
    assert (other.samples - want).abs().max() > 100 * TOL  # the labels matter


@needs_transformers
def test_stable_diffusion_3_pipeline_is_reproduced_with_shift_and_cfg(tmp_path):
    pipe = tiny.sd3_pipeline(shift=3.0)
    emb, neg = embeddings(6, (2, tiny.TOKENS, 32))
    pooled, neg_pooled = embeddings(7, (2, 64))
    latents = torch.randn(2, 4, tiny.LATENT, tiny.LATENT, generator=torch.Generator().manual_seed(8))
    call = dict(
        prompt_embeds=emb,
        negative_prompt_embeds=neg,
        pooled_prompt_embeds=pooled,
        negative_pooled_prompt_embeds=neg_pooled,
        latents=latents,
        num_inference_steps=STEPS,
        guidance_scale=3.0,
    )
    want, want_images = pipe(**call, output_type="latent").images, pipe(**call, output_type="pt").images
    pipe.save_pretrained(tmp_path / "sd3")

    model = sk.load_model(tmp_path / "sd3")
    assert model.parametrization == "flow" and model.sde.name == "rectified_flow"
    assert model.schedule_options == {"shift": 3.0}
    res = samplekit_run(
        model,
        {"encoder_hidden_states": emb, "pooled_projections": pooled},
        {"encoder_hidden_states": neg, "pooled_projections": neg_pooled},
        3.0,
        "ode_euler",
        pipe.scheduler,
        latents,
    )
    assert res.ts[0] == model.sde.T and res.nfe == 2 * STEPS
    assert_close(res.samples, want, "SD3 + FlowMatchEuler latents")
    assert_close(to_unit(res.decoded), want_images, "SD3 + FlowMatchEuler images")


@needs_transformers
def test_stable_diffusion_xl_pipeline_is_reproduced_with_its_added_conditions(tmp_path):
    """SDXL's UNet takes added_cond_kwargs = {text_embeds: pooled embeddings, time_ids: (original size, crop,
    target size)}; bound as text_embeds= and time_ids= they batch into one CFG call like the other inputs."""
    pipe = tiny.sdxl_pipeline(tiny.sd_scheduler("dpmpp_2m"))
    emb, neg = embeddings(9, (2, tiny.TOKENS, 64))
    pooled, neg_pooled = embeddings(10, (2, 32))
    latents = torch.randn(2, 4, tiny.LATENT, tiny.LATENT, generator=torch.Generator().manual_seed(11))
    size = 2 * tiny.LATENT
    call = dict(
        prompt_embeds=emb,
        negative_prompt_embeds=neg,
        pooled_prompt_embeds=pooled,
        negative_pooled_prompt_embeds=neg_pooled,
        latents=latents,
        num_inference_steps=STEPS,
        guidance_scale=3.0,
        height=size,
        width=size,
    )
    want, want_images = pipe(**call, output_type="latent").images, pipe(**call, output_type="pt").images
    pipe.save_pretrained(tmp_path / "sdxl")

    model = sk.load_model(tmp_path / "sdxl")
    counter = CountingModule(model.net.module)
    model.net.module = counter
    time_ids = torch.tensor([[size, size, 0, 0, size, size]], dtype=torch.float32)  # the pipeline's defaults
    with pytest.raises(TypeError, match="time_ids"):
        sk.sample(
            model.condition(encoder_hidden_states=emb, text_embeds=pooled),
            "dpmpp_2m",
            nfe=2,
            num_samples=2,
            progress=False,
        )
    res = samplekit_run(
        model,
        {"encoder_hidden_states": emb, "text_embeds": pooled, "time_ids": time_ids},
        {"encoder_hidden_states": neg, "text_embeds": neg_pooled, "time_ids": time_ids},
        3.0,
        "dpmpp_2m",
        pipe.scheduler,
        latents,
    )
    assert counter.calls == STEPS and counter.rows == STEPS * 4
    assert_close(res.samples, want, "SDXL + DPM-Solver++(2M) latents")
    assert_close(to_unit(res.decoded), want_images, "SDXL + DPM-Solver++(2M) images")
