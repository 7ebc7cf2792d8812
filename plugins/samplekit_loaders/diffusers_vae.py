"""A latent pipeline's VAE as the ``ScoreModel.decoder`` that fills ``res.decoded``.

Latent diffusion samples z in the VAE's scaled latent space; a pipeline decodes (Rombach et al. 2022;
SD3 adds a shift, Esser et al. 2024):

    image = vae.decode(z / scaling_factor + shift_factor)          (shift_factor 0 when unset)

as StableDiffusionPipeline (no shift factor in its VAEs), DiTPipeline and StableDiffusion3Pipeline do.
The images are the VAE's raw output (nominally in [-1, 1]); pipelines' postprocessing maps them to [0, 1]
with (image / 2 + 0.5).clamp(0, 1).  Works for AutoencoderKL and AutoencoderTiny.
"""

from __future__ import annotations

import torch


class LatentDecoder(torch.nn.Module):
    """decoder(z) = vae.decode(z / scaling_factor + shift_factor).sample, in z's dtype, without autograd."""

    def __init__(self, vae) -> None:
        super().__init__()
        config = getattr(vae, "config", {})
        self.vae = vae.eval()
        self.scaling_factor = float(config.get("scaling_factor", 1.0) or 1.0)
        self.shift_factor = float(config.get("shift_factor", 0.0) or 0.0)
        params = list(vae.parameters())
        self.dtype = params[0].dtype if params else torch.float32

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            latents = z.to(self.dtype) / self.scaling_factor + self.shift_factor
            image = self.vae.decode(latents).sample
        return image.to(z.dtype)

    def __repr__(self) -> str:
        return (
            f"LatentDecoder({type(self.vae).__name__}, scaling_factor={self.scaling_factor:g}, "
            f"shift_factor={self.shift_factor:g})"
        )
