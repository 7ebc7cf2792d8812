"""Model loaders: diffusers, k-diffusion-style denoisers, plain torch modules, samplekit's native format.

Also registers the ``discrete`` schedule: the training timesteps of a discrete-time (DDPM) model.
"""

from __future__ import annotations

from samplekit.hookspecs import Register, hookimpl


@hookimpl
def samplekit_register_model_loaders(register: Register) -> None:
    from samplekit_loaders.denoiser_loader import load_denoiser
    from samplekit_loaders.diffusers_loader import load_diffusers
    from samplekit_loaders.native_loader import load_native
    from samplekit_loaders.torch_loader import load_torch

    register("diffusers", load_diffusers, needs="diffusers")
    register("denoiser", load_denoiser)
    register("torch", load_torch)
    register("samplekit", load_native, needs="safetensors")


@hookimpl
def samplekit_register_schedules(register: Register) -> None:
    from samplekit.discrete import discrete_timesteps

    register("discrete", discrete_timesteps)
