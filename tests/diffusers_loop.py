"""diffusers' own sampling loop, as its pipelines write it, for the scheduler-equivalence tests: classifier-free
guidance on one batched call of a tiny class-conditional UNet2DModel, ``rescale_noise_cfg`` on the guided
output, ``scheduler.scale_model_input`` and ``scheduler.step``.  Its twin on samplekit's side is
``samplekit_run``: the model loaded with the scheduler's config, the grid and solver from
``samplekit.diffusers.conventions``."""

from __future__ import annotations

import torch

import samplekit as sk
from samplekit.diffusers.conventions import scheduler_grid, scheduler_solver


def rescale_noise_cfg(guided, cond, phi):
    """diffusers' ``rescale_noise_cfg`` (imported where the installed diffusers has it in the SD pipeline)."""
    from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import rescale_noise_cfg as peer

    return peer(guided, cond, guidance_rescale=phi)


@torch.no_grad()
def diffusers_run(unet, scheduler, latents, labels, null, scale, rescale, steps, generator=None):
    """The pipeline loop; returns the final latents in samplekit's VP convention (x_vp = x / sqrt(1 + sigma^2)
    for the sigma-stepping schedulers, whose state is x_vp scaled by sqrt(1 + sigma^2))."""
    scheduler.set_timesteps(steps)
    x = latents * scheduler.init_noise_sigma
    both = torch.cat([labels, null])
    extra = {"generator": generator} if generator is not None else {}
    for t in scheduler.timesteps:
        model_in = scheduler.scale_model_input(torch.cat([x, x]), t)
        out = unet(model_in, t, class_labels=both).sample
        cond, uncond = out.chunk(2)
        guided = uncond + scale * (cond - uncond)
        if rescale:
            guided = rescale_noise_cfg(guided, cond, rescale)
        x = scheduler.step(guided, t, x, **extra).prev_sample
    sigmas = getattr(scheduler, "sigmas", None)
    if sigmas is not None and scheduler.init_noise_sigma != 1.0:  # sigma-stepping: back to the VP state
        x = x / (1 + float(sigmas[-1]) ** 2) ** 0.5
    return x


def vp_start(scheduler, latents):
    """The VP x_T that diffusers' first network call sees: latents * init_noise_sigma / sqrt(1 + sigma_0^2)."""
    sigmas = getattr(scheduler, "sigmas", None)
    if sigmas is None or scheduler.init_noise_sigma == 1.0:
        return latents
    return latents * scheduler.init_noise_sigma / (1 + float(sigmas[0]) ** 2) ** 0.5


def samplekit_run(model, scheduler, latents, labels, null, scale, rescale, steps):
    """samplekit on the scheduler's grid with its solver twin (CFG with the same rescale, one batched call)."""
    guided = sk.guidance.classifier_free(
        model.condition(class_labels=labels), model.condition(class_labels=null), scale=scale, rescale=rescale
    )
    scheduler.set_timesteps(steps)
    ts, options = scheduler_grid(scheduler, model)
    name, solver_options = scheduler_solver(scheduler)
    x_T = vp_start(scheduler, latents)
    return sk.sample(guided, name, x_T=x_T, ts=ts, progress=False, **options, **solver_options)
