"""The ``denoiser`` loader: a k-diffusion / EDM-style denoiser D(x, sigma) -> E[x0 | x].

D is defined in the VE convention x = x0 + sigma eps.  Under samplekit's SDE (default the EDM
SDE, sigma_t = t) the network is called on the rescaled input:

    x_t = alpha_t x0 + sigma_t eps  =>  x_t / alpha_t = x0 + (sigma_t / alpha_t) eps,
    net(x_t, t) = D(x_t / alpha_t, sigma_t / alpha_t)   (parametrisation x0),

so a VP SDE works too.  ``source`` is a callable or a TorchScript file.  Its extra keyword arguments
(k-diffusion's ``extra_args``: ``D(x, sigma, cond=...)``) are bound with ``model.condition(cond=...)``
under D's own names; per-sample ones follow their samples through ``batch_size`` chunks and ranks.
"""

from __future__ import annotations

import inspect

import torch

from samplekit.loading import input_grad_only
from samplekit.score import ScoreModel
from samplekit.sde import EDMSDE, SDE, broadcast_to_batch
from samplekit_loaders.torch_loader import load_callable


class DenoiserNet(torch.nn.Module):
    """net(x, t, **inputs) = D(x / alpha_t, sigma_t / alpha_t, **inputs): extra inputs (``model.condition``)
    reach D under D's own parameter names (``inputs_signature`` is D's signature), e.g. k-diffusion's
    ``extra_args`` such as ``cond=``."""

    def __init__(self, denoiser, sde: SDE) -> None:
        super().__init__()
        self.denoiser, self.sde = denoiser, sde
        self.inputs_signature: inspect.Signature | None = None  # not inspectable (TorchScript): any name passes
        try:
            self.inputs_signature = inspect.signature(denoiser)
        except (TypeError, ValueError):
            pass

    def forward(self, x, t, **inputs):
        alpha, sigma = self.sde.marginal(t)
        level = (sigma / alpha).to(x.dtype).reshape(-1).expand(x.shape[0])  # k-diffusion's sigma: shape (batch,)
        with input_grad_only(x):
            return self.denoiser(x / broadcast_to_batch(alpha, x), level, **inputs)


def load_denoiser(
    source,
    shape,
    sde: SDE | None = None,
    sigma_min: float = 0.002,
    sigma_max: float = 80.0,
    name: str | None = None,
    trust_code: bool = False,
) -> ScoreModel:
    """A denoiser D(x, sigma) (callable or TorchScript file) as a ScoreModel (default: EDM SDE)."""
    if shape is None:
        raise ValueError("the denoiser loader needs shape=, one sample's shape, e.g. (2,) or (3, 32, 32)")
    sde = sde if sde is not None else EDMSDE(sigma_min=sigma_min, sigma_max=sigma_max)
    denoiser = load_callable(source, trust_code)
    return ScoreModel(DenoiserNet(denoiser, sde), sde, shape, "x0", name=name or "denoiser")
