"""Classifier guidance (Dhariwal & Nichol 2021; Song et al. 2021, "controllable generation"):

    s_w(x, t) = s(x, t) + w grad_x log p_t(y | x),

where p_t(y | x) is a *noise-conditional* classifier of x_t = alpha_t x_0 + sigma_t eps.
With w = 1 and the exact p_t(y | x), s_w = grad_x log p_t(x | y): the sampler draws from
p(x_0 | y).  w > 1 sharpens towards the class (the usual "guidance scale").  In eps form:
eps_w = eps - w sigma_t grad_x log p_t(y | x).

The classifier is any callable ``log_prob_y_given_x_t(x, t)`` returning class logits or log
probabilities of shape (B, K) (they go through ``log_softmax``, which leaves log probabilities
unchanged); ``y`` is one class index or one per sample.  If ``y`` is None the callable must
return log p_t(y | x) itself, shape (B,).  The gradient is taken with autograd, so the
classifier must be differentiable in x.

NFE: one evaluation is one call of the score network plus one call of the classifier (a
forward and backward pass): ``nfe`` counts both, ``nfe_per_eval`` = the model's + 1; ``score_nfe``
and ``classifier_nfe`` count them apart.  Sampling runs under ``torch.no_grad``; the gradient is
taken under a local ``torch.enable_grad``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from samplekit.errors import ArgumentTypeError, InvalidArgumentError
from samplekit.guidance.wrapper import WrappedModel, check_scale
from samplekit.score import NonFiniteError, Prediction, ScoreModel
from samplekit.sde import broadcast_to_batch

Tensor = torch.Tensor


class ClassifierGuidance(WrappedModel):
    """s(x, t) + w grad_x log p_t(y | x) from a noise-conditional classifier."""

    def __init__(
        self, model: ScoreModel, log_prob_y_given_x_t: Callable[[Tensor, Tensor], Tensor], y=None, scale: float = 1.0
    ) -> None:
        if not callable(log_prob_y_given_x_t):
            raise ArgumentTypeError("log_prob_y_given_x_t must be a callable classifier(x, t) -> (B, K) logits")
        super().__init__([model], name=f"classifier_guidance({getattr(model, 'name', 'model')}, w={scale})")
        self.model = model
        self.classifier = log_prob_y_given_x_t
        self.y = _check_labels(y)
        self.scale = check_scale(scale)

    @property
    def nfe_per_eval(self) -> int:
        return self.model.nfe_per_eval + 1

    def _rebind(self, index) -> None:
        (self.model,) = self.models
        if self.y is not None and self.y.ndim == 1 and self.y.numel() > 1:
            self.y = self.y[index] if isinstance(index, slice) else self.y[torch.as_tensor(index)]

    @property
    def score_nfe(self) -> int:
        return self.model.nfe

    @property
    def classifier_nfe(self) -> int:
        return self.extra_calls

    def log_prob_y(self, x: Tensor, t: Tensor) -> Tensor:
        """log p_t(y | x), shape (B,) (one classifier call)."""
        out = self.classifier(x, t)
        self.extra_calls += 1
        if not isinstance(out, Tensor):
            raise ArgumentTypeError(f"the classifier returned {type(out).__name__}; it must return a tensor")
        if self.y is None:
            if out.shape != (x.shape[0],):
                raise InvalidArgumentError(
                    f"the classifier returned shape {tuple(out.shape)} with y=None; return log p_t(y|x) "
                    f"of shape ({x.shape[0]},), or pass y and return (B, K) logits"
                )
            return out
        if out.ndim != 2 or out.shape[0] != x.shape[0]:
            raise InvalidArgumentError(
                f"the classifier returned shape {tuple(out.shape)}; it must return (B, K) = "
                f"({x.shape[0]}, n_classes) logits or log probabilities"
            )
        y = self.y.to(out.device)
        if y.ndim == 1 and y.shape[0] != x.shape[0]:
            raise InvalidArgumentError(
                f"y has {y.shape[0]} labels for a batch of {x.shape[0]}; pass one label or one per sample"
            )
        if int(y.max()) >= out.shape[1]:
            raise InvalidArgumentError(f"y={int(y.max())} is out of range for a classifier of {out.shape[1]} classes")
        log_p = torch.log_softmax(out, dim=1)
        return log_p.gather(1, y.expand(x.shape[0])[:, None]).squeeze(1)

    def classifier_grad(self, x: Tensor, t: Tensor) -> Tensor:
        """grad_x log p_t(y | x) by autograd (works under torch.no_grad too)."""
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            lp = self.log_prob_y(xg, t)
            (grad,) = torch.autograd.grad(lp.sum(), xg)
        if not torch.isfinite(grad).all():
            raise NonFiniteError("the classifier gradient is NaN/Inf; check the classifier at this noise level")
        return grad.to(x.dtype)

    def evaluate(self, x: Tensor, t: Tensor) -> Prediction:
        """score + w grad, eps - sigma w grad, x0 + (sigma^2 / alpha) w grad (x0 where alpha_t = 0: there
        p_t(y | x) = p(y) does not depend on x)."""
        pred = self.model.predict(x, t)
        push = self.scale * self.classifier_grad(x, t)
        alpha, sigma = self.sde.marginal(t)
        alpha, sigma = broadcast_to_batch(alpha, x), broadcast_to_batch(sigma, x)
        safe = torch.where(alpha == 0, torch.ones_like(alpha), alpha)
        x0 = torch.where(alpha == 0, pred.x0, pred.x0 + sigma * sigma * push / safe)
        return Prediction(pred.score + push, pred.eps - sigma * push, x0)


def _check_labels(y):
    if y is None:
        return None
    y = torch.as_tensor(y)
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool or y.ndim > 1:
        raise ArgumentTypeError(f"y={y!r} must be one integer class index or a 1-D tensor of indices (one per sample)")
    if y.numel() == 0 or int(y.min()) < 0:
        raise InvalidArgumentError(f"y={y.tolist()!r} must hold non-negative class indices")
    return y.long()


def classifier(
    model: ScoreModel, log_prob_y_given_x_t: Callable[[Tensor, Tensor], Tensor], y=None, scale: float = 1.0
) -> ClassifierGuidance:
    """Classifier guidance: a ScoreModel with score s + scale * grad_x log p_t(y | x)."""
    return ClassifierGuidance(model, log_prob_y_given_x_t, y, scale=scale)
