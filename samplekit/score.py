"""Score models: one network, four parametrisations, every call counted.

With X_t = alpha_t x0 + sigma_t eps (DESIGN notation):
    score  s   = grad_x log p_t(x)
    noise  eps = -sigma_t s
    denoiser D = E[X_0 | X_t = x] = (x + sigma_t^2 s) / alpha_t
    velocity v = alpha_t eps - sigma_t x0
All conversions live here (as DPM-Solver's ``model_wrapper`` and k-diffusion's
``external.py`` keep theirs in one place); solvers never switch on a model type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from samplekit.registry import SamplekitError
from samplekit.sde import SDE, as_time, broadcast_to_batch

Tensor = torch.Tensor
PARAMETRIZATIONS = ("score", "eps", "x0", "v")


class NonFiniteError(SamplekitError, FloatingPointError):
    """A network or a solver step produced NaN or Inf."""


def _check_parametrization(parametrization: str) -> None:
    if parametrization not in PARAMETRIZATIONS:
        raise ValueError(f"parametrization={parametrization!r} is unknown; use one of {', '.join(PARAMETRIZATIONS)}")


def to_eps_x0(parametrization: str, out: Tensor, x: Tensor, alpha: Tensor, sigma: Tensor) -> tuple[Tensor, Tensor]:
    """(eps, x0) from a network output in the given parametrisation; alpha, sigma broadcast to x."""
    if parametrization == "score":
        return -sigma * out, (x + sigma * sigma * out) / alpha
    if parametrization == "eps":
        return out, (x - sigma * out) / alpha
    if parametrization == "x0":
        return (x - alpha * out) / sigma, out
    if parametrization == "v":  # eps = (alpha v + sigma x) / n, x0 = (alpha x - sigma v) / n, n = alpha^2 + sigma^2
        norm = alpha * alpha + sigma * sigma
        return (alpha * out + sigma * x) / norm, (alpha * x - sigma * out) / norm
    _check_parametrization(parametrization)
    raise AssertionError


def to_score(parametrization: str, out: Tensor, x: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    """The score s from a network output in the given parametrisation."""
    if parametrization == "score":
        return out
    eps, _ = to_eps_x0(parametrization, out, x, alpha, sigma)
    return -eps / sigma


def from_score(parametrization: str, score: Tensor, x: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    """The network output in the given parametrisation that encodes the score s."""
    _check_parametrization(parametrization)
    if parametrization == "score":
        return score
    eps = -sigma * score
    x0 = (x + sigma * sigma * score) / alpha
    return {"eps": eps, "x0": x0, "v": alpha * eps - sigma * x0}[parametrization]


@dataclass(frozen=True)
class Prediction:
    """Everything one network call says about x at time t."""

    score: Tensor
    eps: Tensor
    x0: Tensor


class ScoreModel:
    """A network ``net(x, t) -> output`` in one parametrisation, with its SDE and sample shape.

    ``model(x, t)`` returns the score; ``model.predict(x, t)`` returns score, eps and x0 from
    the same single call.  ``model.nfe`` counts network calls.  x has shape (B, *shape);
    t is a scalar or one time per sample, within [sde.t_min, sde.T].
    """

    def __init__(self, net: Callable[[Tensor, Tensor], Tensor], sde: SDE, shape: Sequence[int],
                 parametrization: str = "score", name: str | None = None) -> None:
        _check_parametrization(parametrization)
        if not callable(net):
            raise TypeError(f"net={net!r} is not callable; pass a function or module net(x, t) -> tensor")
        if not isinstance(sde, SDE):
            raise TypeError(f"sde={sde!r} is not a samplekit SDE; build one with sk.get_sde('vp') or sk.VPSDE()")
        shape = tuple(int(n) for n in shape)
        if not shape or any(n < 1 for n in shape):
            raise ValueError(f"shape={shape!r} must be one sample's shape with positive sizes, e.g. (2,) or (1, 8, 8)")
        self.net = net
        self.sde = sde
        self.shape = shape
        self.parametrization = parametrization
        self.name = name or getattr(net, "__name__", type(net).__name__)
        self.nfe = 0

    @classmethod
    def from_score(cls, net, sde: SDE, shape: Sequence[int], **kw) -> "ScoreModel":
        """net(x, t) = s(x, t)."""
        return cls(net, sde, shape, "score", **kw)

    @classmethod
    def from_eps(cls, net, sde: SDE, shape: Sequence[int], **kw) -> "ScoreModel":
        """net(x, t) = eps(x, t) = -sigma_t s(x, t)."""
        return cls(net, sde, shape, "eps", **kw)

    @classmethod
    def from_denoiser(cls, net, sde: SDE, shape: Sequence[int], **kw) -> "ScoreModel":
        """net(x, t) = D(x, t) = (x + sigma_t^2 s) / alpha_t."""
        return cls(net, sde, shape, "x0", **kw)

    @classmethod
    def from_v(cls, net, sde: SDE, shape: Sequence[int], **kw) -> "ScoreModel":
        """net(x, t) = v = alpha_t eps - sigma_t x0."""
        return cls(net, sde, shape, "v", **kw)

    def __call__(self, x: Tensor, t) -> Tensor:
        return self.predict(x, t).score

    def check_input(self, x: Tensor, t, argument: str = "x") -> Tensor:
        """Validate x and t; return t as a per-sample tensor of x's dtype and device."""
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise TypeError(f"{argument} must be a floating-point tensor of shape (batch, {', '.join(map(str, self.shape))})")
        if tuple(x.shape[1:]) != self.shape:
            raise ValueError(f"{argument} has shape {tuple(x.shape)}; this model takes (batch, "
                             f"{', '.join(map(str, self.shape))}) — reshape to one sample per row")
        t = self.sde.check_time(as_time(t, x))
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        elif t.shape != (x.shape[0],):
            raise ValueError(f"t has shape {tuple(t.shape)}; pass a scalar or one time per sample, shape ({x.shape[0]},)")
        return t

    def predict(self, x: Tensor, t) -> Prediction:
        """score, eps and x0 at (x, t) from one network call."""
        t = self.check_input(x, t)
        out = self.net(x, t)
        self.nfe += 1
        if not isinstance(out, Tensor) or out.shape != x.shape:
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(f"network {self.name!r} returned {got} for input {tuple(x.shape)}; "
                             "it must return one output of the input's shape")
        if not torch.isfinite(out).all():
            raise NonFiniteError(f"network {self.name!r} returned NaN/Inf at t={_span(t)}; "
                                 "check the model's weights and input scaling")
        out = out.to(x.dtype)
        alpha, sigma = self.sde.marginal(t)
        alpha, sigma = broadcast_to_batch(alpha, x), broadcast_to_batch(sigma, x)
        if self.parametrization == "score":
            return Prediction(out, -sigma * out, (x + sigma * sigma * out) / alpha)
        eps, x0 = to_eps_x0(self.parametrization, out, x, alpha, sigma)
        return Prediction(-eps / sigma, eps, x0)

    def eps(self, x: Tensor, t) -> Tensor:
        return self.predict(x, t).eps

    def denoise(self, x: Tensor, t) -> Tensor:
        return self.predict(x, t).x0

    def __repr__(self) -> str:
        return f"ScoreModel({self.name!r}, {self.parametrization}, sde={self.sde!r}, shape={self.shape})"


def _span(t: Tensor) -> str:
    lo, hi = t.min().item(), t.max().item()
    return f"{lo:g}" if lo == hi else f"[{lo:g} .. {hi:g}]"
