"""Classifier-free guidance (Ho & Salimans 2022), in the convention where w = 1 is the conditional model:

    s_w(x, t) = s_u(x, t) + w (s_c(x, t) - s_u(x, t)),   eps_w = eps_u + w (eps_c - eps_u),

s_c the conditional score (of p_t(x | y)), s_u the unconditional one (of p_t(x)).  w = 0 is the
unconditional model, w = 1 the conditional one, w > 1 extrapolates away from the unconditional
model (Ho & Salimans' w' = w - 1).  Since s_c - s_u = grad_x log p_t(y | x), this is classifier
guidance with an implicit classifier.  The same weights combine eps and x0 (the conversions are
affine in the network output with weights summing to one), so x0_w stays finite where alpha_t = 0.

**One network, one call.**  When ``cond`` and ``uncond`` are ``condition()``-ed views of the same
network (same net, parametrisation, time convention and SDE), each evaluation is ONE call on the 2B
inputs [x; x] with their inputs concatenated (per-sample inputs as they are, broadcast ones expanded
to B rows each), as diffusers' pipelines do; otherwise (different networks, an input bound on one
side only, a value that cannot be batched) two calls.  Either way ``nfe`` grows by 2 per evaluation
per the counters of both views, so budgets mean the same; ``nfe_per_eval`` is derived from the models.

**Guidance rescale** (Lin et al. 2023, "Common diffusion noise schedules and sample steps are
flawed", arXiv 2305.08891, eqs. 15-16), as diffusers' ``rescale_noise_cfg``, in the network's own output
space o (eps for an eps network, v for a v-prediction one, as the pipelines apply it): per sample,
    o_w = o_u + w (o_c - o_u),   o_rescaled = o_w * std(o_c) / std(o_w),   o_final = phi o_rescaled + (1 - phi) o_w,
the std over all but the batch dimension, phi = ``rescale``; score, eps and x0 follow from o_final.  When
either side is itself a wrapped model (no raw output) or the two differ in parametrisation, o is eps
(x0 = x0_w where alpha_t = 0, where eps carries nothing of x0).

**Guidance interval** (Kynkaanniemi et al. 2024, "Applying guidance in a limited interval improves
sample and distribution quality", arXiv 2404.07724): with ``interval=(t_lo, t_hi)`` guidance acts only
for t_lo <= t <= t_hi; elsewhere the model is the conditional one, and an evaluation whose times all
lie outside makes ONE network call (counted as 1).
"""

from __future__ import annotations

import torch

from samplekit.errors import ArgumentTypeError, InvalidArgumentError
from samplekit.guidance.wrapper import WrappedModel, check_scale
from samplekit.inputs import expand_to_batch, inputs_for_batch
from samplekit.score import Prediction, ScoreModel
from samplekit.sde import broadcast_to_batch

Tensor = torch.Tensor


class ClassifierFreeGuidance(WrappedModel):
    """s_u + w (s_c - s_u) from a conditional and an unconditional score model (one batched call on one net)."""

    def __init__(
        self,
        cond_model: ScoreModel,
        uncond_model: ScoreModel,
        scale: float = 1.0,
        rescale: float = 0.0,
        interval: tuple[float, float] | None = None,
    ) -> None:
        if cond_model is uncond_model:
            raise InvalidArgumentError(
                "cond_model and uncond_model are the same object; classifier-free guidance "
                "needs the conditional and the unconditional model (e.g. model.condition(y=label) and "
                "model.condition(y=null_label))"
            )
        super().__init__([cond_model, uncond_model], name=f"cfg({getattr(cond_model, 'name', 'cond')}, w={scale})")
        self.cond_model, self.uncond_model = cond_model, uncond_model
        self.scale = check_scale(scale)
        self.rescale = _check_rescale(rescale)
        self.interval = _check_interval(interval, cond_model.sde)

    def _rebind(self, index) -> None:
        self.cond_model, self.uncond_model = self.models

    @property
    def one_network(self) -> bool:
        """Both models are plain views of one network (so an evaluation can be one batched call)."""
        c, u = self.cond_model, self.uncond_model
        return (
            not isinstance(c, WrappedModel)
            and not isinstance(u, WrappedModel)
            and c.net is u.net
            and c.parametrization == u.parametrization
            and c.time_convention == u.time_convention
            and c.sde is u.sde
        )

    def evaluate(self, x: Tensor, t: Tensor) -> Prediction:
        if self.interval is not None:
            on = (t >= self.interval[0]) & (t <= self.interval[1])
            if not bool(on.any()):
                return self.cond_model.predict(x, t)
        (out_c, pred_c), (out_u, pred_u) = self._both(x, t)
        if self.rescale != 0.0 and out_c is not None and out_u is not None:
            guided = self._rescaled_output(out_c, out_u, x, t)
        else:
            guided = self._combine(pred_c, pred_u, x, t)
        if self.interval is not None and not bool(on.all()):
            keep = on.reshape(-1, *([1] * (x.ndim - 1)))
            guided = Prediction(
                *(
                    torch.where(keep, g, c)
                    for g, c in zip((guided.score, guided.eps, guided.x0), (pred_c.score, pred_c.eps, pred_c.x0))
                )
            )
        return guided

    def _both(self, x: Tensor, t: Tensor) -> tuple[tuple[Tensor | None, Prediction], tuple[Tensor | None, Prediction]]:
        """((raw output, prediction) of cond, the same of uncond); the raw output is None for a wrapped
        model, or when the two sides' outputs are not in one space (different parametrisation, time or SDE)."""
        c, u = self.cond_model, self.uncond_model
        inputs = self._batched_inputs(x) if self.one_network else None
        if inputs is None:
            if not self._same_output_space():
                return (None, c.predict(x, t)), (None, u.predict(x, t))
            return c.predict_with_output(x, t), u.predict_with_output(x, t)
        c.check_input(x, t)
        out = c.network_output(torch.cat([x, x]), torch.cat([t, t]), inputs)
        c.nfe += 1
        u.nfe += 1
        out_c, out_u = out.chunk(2)
        return (out_c, c.prediction(out_c, x, t)), (out_u, u.prediction(out_u, x, t))

    def _same_output_space(self) -> bool:
        c, u = self.cond_model, self.uncond_model
        return (
            not isinstance(c, WrappedModel)
            and not isinstance(u, WrappedModel)
            and c.parametrization == u.parametrization
            and c.time_convention == u.time_convention
            and c.sde is u.sde
        )

    def _rescaled_output(self, out_c: Tensor, out_u: Tensor, x: Tensor, t: Tensor) -> Prediction:
        """Guidance and its rescale on the raw outputs (module docstring), then converted as the cond model does."""
        out = out_u + self.scale * (out_c - out_u)
        dims = tuple(range(1, x.ndim))
        factor = out_c.std(dim=dims, keepdim=True) / out.std(dim=dims, keepdim=True)
        out = self.rescale * (out * factor) + (1.0 - self.rescale) * out
        return self.cond_model.prediction(out, x, t)

    def _batched_inputs(self, x: Tensor) -> dict | None:
        """The keyword inputs of one call on [x; x] (cond rows first), or None if they cannot be batched."""
        c, u, B = self.cond_model, self.uncond_model, x.shape[0]
        if set(c.inputs) != set(u.inputs):
            return None
        c._check_required()
        ic, iu = inputs_for_batch(c.inputs, B, x.device), inputs_for_batch(u.inputs, B, x.device)
        merged = {}
        for name in ic:
            vc, vu = ic[name], iu[name]
            if vc is vu and not isinstance(vc, Tensor):
                merged[name] = vc
                continue
            try:
                vc, vu = expand_to_batch(vc, B), expand_to_batch(vu, B)
                merged[name] = torch.cat([vc.to(x.device), vu.to(device=x.device, dtype=vc.dtype)])
            except (LookupError, RuntimeError, TypeError):
                return None
        return merged

    def _combine(self, pred_c: Prediction, pred_u: Prediction, x: Tensor, t: Tensor) -> Prediction:
        w = self.scale
        eps = pred_u.eps + w * (pred_c.eps - pred_u.eps)
        x0 = pred_u.x0 + w * (pred_c.x0 - pred_u.x0)
        score = pred_u.score + w * (pred_c.score - pred_u.score)
        if self.rescale == 0.0:
            return Prediction(score, eps, x0)
        dims = tuple(range(1, x.ndim))
        factor = pred_c.eps.std(dim=dims, keepdim=True) / eps.std(dim=dims, keepdim=True)
        eps_final = self.rescale * (eps * factor) + (1.0 - self.rescale) * eps
        alpha, sigma = self.sde.marginal(t)
        alpha, sigma = broadcast_to_batch(alpha, x), broadcast_to_batch(sigma, x)
        safe = torch.where(alpha == 0, torch.ones_like(alpha), alpha)
        x0_final = torch.where(alpha == 0, x0, x0 + sigma * (eps - eps_final) / safe)
        return Prediction(-eps_final / sigma, eps_final, x0_final)


def _check_rescale(rescale) -> float:
    try:
        value = float(rescale)
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"rescale={rescale!r} must be a number in [0, 1] (guidance rescale phi)") from None
    if not 0.0 <= value <= 1.0:
        raise InvalidArgumentError(f"rescale={rescale!r} must lie in [0, 1] (0: plain CFG; Lin et al. use 0.7)")
    return value


def _check_interval(interval, sde) -> tuple[float, float] | None:
    if interval is None:
        return None
    try:
        lo, hi = (float(v) for v in interval)
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"interval={interval!r} must be a pair of model times (t_lo, t_hi)") from None
    if not lo <= hi:
        raise InvalidArgumentError(f"interval={interval!r} must have t_lo <= t_hi (model times, t = T is noise)")
    if hi < sde.t_min or lo > sde.T:
        raise InvalidArgumentError(
            f"interval={interval!r} lies outside [t_min, T] = [{sde.t_min:g}, {sde.T:g}] of {sde!r}, so guidance "
            "would never act; give model times within it (t = T is noise), not noise levels or training timesteps"
        )
    return lo, hi


def classifier_free(
    cond: ScoreModel,
    uncond: ScoreModel,
    scale: float = 1.0,
    rescale: float = 0.0,
    interval: tuple[float, float] | None = None,
) -> ClassifierFreeGuidance:
    """Classifier-free guidance: a ScoreModel with s_u + scale (s_c - s_u), one batched call when ``cond`` and
    ``uncond`` are ``condition()``-ed views of one network; ``rescale`` (Lin et al. 2023) and ``interval``
    (Kynkaanniemi et al. 2024) as diffusers and EDM2 apply them."""
    return ClassifierFreeGuidance(cond, uncond, scale=scale, rescale=rescale, interval=interval)
