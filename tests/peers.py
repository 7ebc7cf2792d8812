"""Peer implementations for equivalence tests: k-diffusion's ``sampling.py`` loaded on its own.

k-diffusion is a test-only dependency (``pip install --no-deps k-diffusion==0.1.1.post1``): its package
``__init__`` imports torchvision, which does not import beside the CPU torch wheel, so only
``k_diffusion/sampling.py`` is loaded, under a stub package whose ``utils`` provides ``append_dims``.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import pytest
import torch


def kdiffusion_sampling():
    """k_diffusion.sampling without the package __init__; fails the test if k-diffusion is not installed
    (never skips a proof)."""
    if "k_diffusion.sampling" in sys.modules:
        return sys.modules["k_diffusion.sampling"]
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(
            "k-diffusion is not installed: `pip install --no-deps k-diffusion==0.1.1.post1` (make install does this)"
        )
    root = Path(list(spec.submodule_search_locations)[0])
    package = types.ModuleType("k_diffusion")
    package.__path__ = [str(root)]
    utils = types.ModuleType("k_diffusion.utils")
    utils.append_dims = lambda x, target_dims: x[(...,) + (None,) * (target_dims - x.ndim)]
    package.utils = utils
    sys.modules.update({"k_diffusion": package, "k_diffusion.utils": utils})
    sampling_spec = importlib.util.spec_from_file_location("k_diffusion.sampling", root / "sampling.py")
    module = importlib.util.module_from_spec(sampling_spec)
    sys.modules["k_diffusion.sampling"] = module
    sampling_spec.loader.exec_module(module)
    package.sampling = module
    return module


def kdiff_denoiser(model):
    """k-diffusion's model(y, s): D at the t whose log-SNR is -log s (clamped to [t_min, T]), with input
    x = alpha_t y: a samplekit model in k-diffusion's convention (y = x / alpha, s = sigma / alpha)."""
    sde = model.sde

    def denoise(y, sigma):
        t = sde.t_from_log_snr(-torch.log(sigma[0].to(torch.float64))).clamp(sde.t_min, sde.T)
        return model.predict(sde.marginal(t)[0] * y, t).x0

    return denoise


def kdiff_trajectory(sampler, model, x_T, ts, **options):
    """A k-diffusion sampler's trajectory in x = alpha y after every step on the grid ts (ts[1:]), from its
    callback and its result; ``options`` go to the sampler (e.g. ``noise_sampler``, ``eta``)."""
    alphas, sigmas = model.sde.marginal(ts)
    seen = []
    y = sampler(
        kdiff_denoiser(model),
        x_T / alphas[0],
        sigmas / alphas,
        disable=True,
        callback=lambda d: seen.append(d["x"].clone()),
        **options,
    )
    return [alphas[i + 1] * yi for i, yi in enumerate(seen[1:] + [y])]
