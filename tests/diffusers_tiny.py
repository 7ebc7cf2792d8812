"""Tiny random-weight diffusers models and pipelines, built from configs (no downloads), for the
equivalence tests of the ``diffusers`` loader.  Sizes follow diffusers' own pipeline tests
(tests/pipelines/stable_diffusion/test_stable_diffusion.py, dit/test_dit.py,
stable_diffusion_3/test_pipeline_stable_diffusion_3.py) shrunk to 8 x 8 latents.  Text encoders are left
out: the pipelines take ``prompt_embeds`` (and SD3's pooled embeddings) directly.
"""

from __future__ import annotations

import torch

LATENT = 8  # latent side
CROSS_DIM = 8  # SD text embedding width
TOKENS = 5  # prompt length


def _seeded(seed, build):
    torch.manual_seed(seed)
    return build().eval()


def sd_unet(seed: int = 0):
    from diffusers import UNet2DConditionModel

    return _seeded(
        seed,
        lambda: UNet2DConditionModel(
            block_out_channels=(4, 8),
            layers_per_block=1,
            sample_size=LATENT,
            in_channels=4,
            out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=CROSS_DIM,
            norm_num_groups=2,
        ),
    )


def kl_vae(seed: int = 0, **factors):
    """AutoencoderKL with one downsampling (8 x 8 latents <-> 16 x 16 images); ``factors``: scaling/shift."""
    from diffusers import AutoencoderKL

    return _seeded(
        seed,
        lambda: AutoencoderKL(
            block_out_channels=[4, 8],
            in_channels=3,
            out_channels=3,
            down_block_types=["DownEncoderBlock2D"] * 2,
            up_block_types=["UpDecoderBlock2D"] * 2,
            latent_channels=4,
            norm_num_groups=2,
            **factors,
        ),
    )


def tiny_vae(seed: int = 0):
    """AutoencoderTiny (TAESD's architecture), one upsampling."""
    from diffusers import AutoencoderTiny

    return _seeded(
        seed,
        lambda: AutoencoderTiny(
            encoder_block_out_channels=(4, 4),
            decoder_block_out_channels=(4, 4),
            num_encoder_blocks=(1, 1),
            num_decoder_blocks=(1, 1),
            latent_channels=4,
        ),
    )


def sd_scheduler(kind: str):
    """SD 1.x's training schedule (scaled_linear betas, steps_offset 1, leading spacing) in the scheduler
    named ``kind``; DPM-Solver and UniPC end on sigma_min (final_sigmas_type='zero' is diffusers' x0 at a
    large timestep, which samplekit does not reproduce: see diffusers_grid)."""
    import diffusers

    config = dict(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        steps_offset=1,
        timestep_spacing="leading",
    )
    if kind == "ddim":
        return diffusers.DDIMScheduler(clip_sample=False, set_alpha_to_one=False, **config)
    if kind == "dpmpp_2m":
        return diffusers.DPMSolverMultistepScheduler(final_sigmas_type="sigma_min", **config)
    if kind == "unipc":
        return diffusers.UniPCMultistepScheduler(final_sigmas_type="sigma_min", **config)
    raise ValueError(kind)


def sd_pipeline(scheduler, vae=None):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(
        vae=vae if vae is not None else kl_vae(),
        text_encoder=None,
        tokenizer=None,
        unet=sd_unet(),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def dit_transformer(seed: int = 0):
    from diffusers import DiTTransformer2DModel

    return _seeded(
        seed,
        lambda: DiTTransformer2DModel(
            sample_size=LATENT,
            num_layers=2,
            patch_size=2,
            attention_head_dim=8,
            num_attention_heads=2,
            in_channels=4,
            out_channels=8,
            attention_bias=True,
            activation_fn="gelu-approximate",
            num_embeds_ada_norm=1000,
            norm_type="ada_norm_zero",
            norm_elementwise_affine=False,
        ),
    )


def dit_pipeline(scheduler=None):
    """DiTPipeline with its test's DDIMScheduler() but clip_sample=False (as the released DiT checkpoints;
    set_alpha_to_one=True: it ends on the x0 prediction at timestep 0) and a tiny VAE."""
    from diffusers import DDIMScheduler, DiTPipeline

    pipe = DiTPipeline(
        transformer=dit_transformer(), vae=kl_vae(), scheduler=scheduler or DDIMScheduler(clip_sample=False)
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def sd3_transformer(seed: int = 0):
    from diffusers import SD3Transformer2DModel

    return _seeded(
        seed,
        lambda: SD3Transformer2DModel(
            sample_size=LATENT,
            patch_size=1,
            in_channels=4,
            num_layers=1,
            attention_head_dim=8,
            num_attention_heads=4,
            caption_projection_dim=32,
            joint_attention_dim=32,
            pooled_projection_dim=64,
            out_channels=4,
        ),
    )


def sd3_vae(seed: int = 0):
    """SD3's test VAE: no downsampling, with SD3's shift and scaling factors."""
    from diffusers import AutoencoderKL

    return _seeded(
        seed,
        lambda: AutoencoderKL(
            sample_size=LATENT,
            in_channels=3,
            out_channels=3,
            block_out_channels=(4,),
            layers_per_block=1,
            latent_channels=4,
            norm_num_groups=1,
            use_quant_conv=False,
            use_post_quant_conv=False,
            shift_factor=0.0609,
            scaling_factor=1.5035,
        ),
    )


def sd3_pipeline(shift: float = 3.0):
    from diffusers import FlowMatchEulerDiscreteScheduler, StableDiffusion3Pipeline

    pipe = StableDiffusion3Pipeline(
        transformer=sd3_transformer(),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=shift),
        vae=sd3_vae(),
        text_encoder=None,
        tokenizer=None,
        text_encoder_2=None,
        tokenizer_2=None,
        text_encoder_3=None,
        tokenizer_3=None,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def unet2d(seed: int = 0, size: int = LATENT, width: int = 8, groups: int = 4, **extra):
    """A 1-channel UNet2DModel (size x size, two DownBlock2D / UpBlock2D levels of ``width`` channels),
    seeded; ``extra`` goes to its config (e.g. ``num_class_embeds``)."""
    from diffusers import UNet2DModel

    return _seeded(
        seed,
        lambda: UNet2DModel(
            sample_size=size,
            in_channels=1,
            out_channels=1,
            block_out_channels=(width, width),
            layers_per_block=1,
            norm_num_groups=groups,
            down_block_types=("DownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "UpBlock2D"),
            **extra,
        ),
    )


def class_unet(seed: int = 0, num_classes: int = 10):
    """UNet2DModel with class embeddings (8 x 8, 1 channel), as a class-conditional digits model."""
    return unet2d(seed, num_class_embeds=num_classes)


def sdxl_unet(seed: int = 0):
    """SDXL's UNet (addition_embed_type="text_time": pooled text embeddings and size/crop ids), as in
    diffusers' tests/pipelines/stable_diffusion_xl/test_stable_diffusion_xl.py, on 8 x 8 latents."""
    from diffusers import UNet2DConditionModel

    return _seeded(
        seed,
        lambda: UNet2DConditionModel(
            block_out_channels=(2, 4),
            layers_per_block=2,
            sample_size=LATENT,
            in_channels=4,
            out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=(2, 4),
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=8,
            transformer_layers_per_block=(1, 2),
            projection_class_embeddings_input_dim=80,
            cross_attention_dim=64,
            norm_num_groups=1,
        ),
    )


def sdxl_pipeline(scheduler):
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline(
        vae=kl_vae(),
        text_encoder=None,
        text_encoder_2=None,
        tokenizer=None,
        tokenizer_2=None,
        unet=sdxl_unet(),
        scheduler=scheduler,
        add_watermarker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe
