"""The tiny models the README's code blocks name (``with=NAME``): each fixture returns the variables it puts
in the blocks' namespace, built without downloads (random weights from configs, exact mixtures) in the
current directory, which is the README run's temporary directory."""

from __future__ import annotations

import torch

import samplekit as sk
from samplekit.targets import ring2d


def _exact_edm_denoiser():
    """D(x, sigma) = x + sigma^2 s(x, sigma) of the ring mixture under the EDM SDE (sigma_t = t, alpha_t = 1):
    a k-diffusion denoiser with an exact answer."""
    score = ring2d().score_model(sk.EDMSDE())

    def denoiser(x, sigma, **extra_args):
        sigma = torch.as_tensor(sigma, dtype=x.dtype).reshape(-1).expand(x.shape[0])
        return x + sigma[:, None] ** 2 * score(x, sigma)

    return denoiser


def _clip_text_encoder(length: int = 77):
    """A tiny CLIP tokenizer (byte-level vocabulary, no merges) and a random-weight text encoder whose width
    matches the tiny SD UNet's cross-attention."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from diffusers_tiny import CROSS_DIM

    chars = [chr(c) for c in range(33, 127)]
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": i + len(chars) for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=length)
    torch.manual_seed(0)
    config = CLIPTextConfig(
        vocab_size=len(vocab),
        hidden_size=CROSS_DIM,
        intermediate_size=2 * CROSS_DIM,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=length,
        bos_token_id=vocab["<|startoftext|>"],
        eos_token_id=vocab["<|endoftext|>"],
        pad_token_id=vocab["<|endoftext|>"],
    )
    return tokenizer, CLIPTextModel(config).eval()


def sd_pipe() -> dict:
    """``pipe``: a tiny random-weight StableDiffusionPipeline with a text encoder and tokenizer."""
    from diffusers import StableDiffusionPipeline

    from diffusers_tiny import kl_vae, sd_scheduler, sd_unet

    tokenizer, text_encoder = _clip_text_encoder()
    pipe = StableDiffusionPipeline(
        vae=kl_vae(),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=sd_unet(),
        scheduler=sd_scheduler("dpmpp_2m"),
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return {"pipe": pipe}


def kdiffusion_denoiser() -> dict:
    """k-diffusion's calling convention: a denoiser ``model(x, sigma)``, ``x`` = noise at ``sigmas[0]`` and a
    Karras sigma list ending in 0 (as ``k_diffusion.sampling.get_sigmas_karras`` makes it)."""
    n, sigma_min, sigma_max, rho = 10, 0.002, 80.0, 7.0
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    sigmas = (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    sigmas = torch.cat([sigmas, sigmas.new_zeros(1)])
    x = torch.randn(500, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * sigmas[0]
    return {"model": _exact_edm_denoiser(), "x": x, "sigmas": sigmas}


def score_model() -> dict:
    """``model``: the exact score of the ring mixture under the VP SDE."""
    return {"model": ring2d().score_model(sk.VPSDE())}


class _TinyNet(torch.nn.Module):
    """A random-weight MLP net(x, t) on 2-D points: stands for the user's network."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.body = torch.nn.Sequential(torch.nn.Linear(3, 32), torch.nn.SiLU(), torch.nn.Linear(32, 2))

    def forward(self, x, t):
        t = torch.as_tensor(t, dtype=x.dtype).reshape(-1, 1).expand(x.shape[0], 1)
        return self.body(torch.cat([x, t], dim=1))


def your_networks() -> dict:
    """``net`` (eps), ``flow_net`` (velocity), ``denoiser`` (D(x, sigma)) and a saved tiny diffusers UNet with
    its scheduler in ``my_unet/``."""
    from diffusers import DDPMScheduler

    from diffusers_tiny import unet2d

    unet2d(size=8).save_pretrained("my_unet")
    DDPMScheduler(num_train_timesteps=1000).save_pretrained("my_unet")
    return {"net": _TinyNet(0), "flow_net": _TinyNet(1), "denoiser": _exact_edm_denoiser()}


FIXTURES = {f.__name__: f for f in (sd_pipe, kdiffusion_denoiser, score_model, your_networks)}
