"""A diffusers denoiser (UNet2DModel, UNet2DConditionModel, DiTTransformer2DModel, SD3Transformer2DModel, ...)
as a samplekit network ``net(x, t, **inputs)``:

    net(x, t, **inputs) = module(x, timestep_of(t), **inputs)[:, :C]      (C = x's channels)

in the module's dtype, returned in x's dtype.  The extra inputs keep the module's own argument names
(``class_labels``, ``encoder_hidden_states``, ``pooled_projections``, ``added_cond_kwargs``, ...), bound with
``model.condition(**inputs)``; the adapter's signature lists them (keyword-only), and those the module cannot
run without are required, so a missing one is an error before any call.  A module whose output has 2C
channels (DiT's learned sigma, as in DiTPipeline) gives its first C channels: the eps / x0 / v / flow output.

A UNet with ``addition_embed_type`` (SDXL's "text_time", ...) takes ``added_cond_kwargs``, a dict; its
entries are also inputs of their own (``text_embeds``, ``time_ids``, ``image_embeds``, ``hint``), which the
adapter packs into ``added_cond_kwargs``: bound that way they are per-sample tensors like the others, so they
follow their samples and batch into one classifier-free-guidance call.  For "text_time" they are required.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

from samplekit.loading import input_grad_only

#: arguments the adapter fills itself, never bound by the user
OWN_ARGUMENTS = ("sample", "hidden_states", "timestep", "return_dict")
#: the entries of a UNet's added_cond_kwargs, per addition_embed_type (and the ones it needs)
ADDED_COND = {
    "text_time": (("text_embeds", "time_ids"), ("text_embeds", "time_ids")),
    "text_image": (("text_embeds", "image_embeds"), ("image_embeds",)),
    "image": (("image_embeds",), ("image_embeds",)),
    "image_hint": (("image_embeds", "hint"), ("image_embeds", "hint")),
}


def added_cond_keys(module) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(accepted, required) entries of added_cond_kwargs for the module's addition_embed_type."""
    embed_type: Any = getattr(module, "config", {}).get("addition_embed_type")
    return ADDED_COND.get(embed_type, ((), ()))


def config_required(module) -> set[str]:
    """Inputs the module's config makes mandatory although its signature gives them a default."""
    config = getattr(module, "config", {})
    name = type(module).__name__
    need = set()
    if name.startswith("DiT") or config.get("num_class_embeds") or config.get("class_embed_type"):
        need.add("class_labels")
    if name.startswith("SD3Transformer"):
        need |= {"encoder_hidden_states", "pooled_projections"}
    need |= set(added_cond_keys(module)[1])
    return need


def timestep_by_keyword(module) -> bool:
    """Whether ``timestep`` must go by name: it is a parameter, but not the second (SD3Transformer2DModel's
    second is encoder_hidden_states).  Otherwise it goes second by position, as diffusers' UNets take it."""
    try:
        names = list(inspect.signature(getattr(module, "forward", module)).parameters)
    except (TypeError, ValueError):
        return False
    return "timestep" in names and names.index("timestep") != 1


def input_signature(module) -> inspect.Signature:
    """(x, t, *, <the module's extra arguments>) with the required ones lacking a default."""
    try:
        params = list(inspect.signature(getattr(module, "forward", module)).parameters.values())
    except (TypeError, ValueError):
        params = []
    need = config_required(module)
    extra = []
    for p in params[1:]:
        if p.name in OWN_ARGUMENTS or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        required = p.default is inspect.Parameter.empty or p.name in need
        extra.append(
            inspect.Parameter(
                p.name, inspect.Parameter.KEYWORD_ONLY, default=inspect.Parameter.empty if required else None
            )
        )
    for key in added_cond_keys(module)[0]:
        extra.append(
            inspect.Parameter(
                key, inspect.Parameter.KEYWORD_ONLY, default=inspect.Parameter.empty if key in need else None
            )
        )
    head = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in ("x", "t")]
    return inspect.Signature(head + sorted(extra, key=lambda p: p.default is not inspect.Parameter.empty))


class DiffusersNet(torch.nn.Module):
    """net(x, t, **inputs) = module(x, timestep_of(t), **inputs), first C output channels."""

    def __init__(self, module, timestep_of, timestep_rule: str | None = None) -> None:
        super().__init__()
        self.module, self.timestep_of = module, timestep_of
        self.timestep_rule = timestep_rule  # read by scheduler_grid(scheduler, model) to check the grid
        params = list(module.parameters()) if isinstance(module, torch.nn.Module) else []
        self.dtype = params[0].dtype if params else None
        signature = input_signature(module)
        self.input_names = tuple(signature.parameters)[2:]
        self.added_keys = added_cond_keys(module)[0]
        self.timestep_keyword = timestep_by_keyword(module)

        def forward(x, t, **inputs):
            return self.evaluate(x, t, inputs)

        forward.__signature__ = signature  # type: ignore[attr-defined]  # read by model.condition()
        self.forward = forward

    def evaluate(self, x, t, inputs):
        dtype = self.dtype or x.dtype
        timestep = self.timestep_of(t, dtype).to(device=x.device)
        inputs = {
            k: (v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v) for k, v in inputs.items()
        }
        packed = {k: inputs.pop(k) for k in self.added_keys if k in inputs}
        if packed:
            inputs["added_cond_kwargs"] = {**(inputs.get("added_cond_kwargs") or {}), **packed}
        with input_grad_only(x):
            if self.timestep_keyword:
                out = self.module(x.to(dtype), timestep=timestep, **inputs)
            else:
                out = self.module(x.to(dtype), timestep, **inputs)
        out = getattr(out, "sample", out)
        if isinstance(out, tuple):
            out = out[0]
        channels = x.shape[1] if x.ndim > 2 else None  # images (B, C, ...): channels first
        if channels is not None and out.ndim == x.ndim and out.shape[1] == 2 * channels:
            out = out[:, :channels]  # learned variance (DiT): the prediction is the first half
        return out.to(x.dtype)
