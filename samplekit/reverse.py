"""The reverse-time family, in one place.

dX = [f(X, t) - (1 - lambda/2) g(t)^2 s(X, t)] dt + sqrt(1 - lambda) g(t) dW_bar,
lambda = 0: the reverse SDE; lambda = 1: the probability-flow ODE.

The probability-flow drift f - g^2 s / 2 equals alpha'_t x0 + sigma'_t eps for every process with
Gaussian marginals (differentiate x_t = alpha_t x0 + sigma_t eps under the conditional expectation);
that form is used, because it stays finite where alpha_t -> 0 (rectified flow at t = T = 1), where f
and g^2 diverge separately.
"""

from __future__ import annotations

import torch

from samplekit.score import Prediction, ScoreModel
from samplekit.sde import as_time, broadcast_to_batch

Tensor = torch.Tensor


def reverse_drift(model: ScoreModel, x: Tensor, t, lam: float = 0.0) -> tuple[Tensor, Prediction]:
    """f(x, t) - (1 - lam/2) g(t)^2 s(x, t), with the prediction of the one network call it made."""
    if lam == 1.0:
        return probability_flow_drift(model, x, t)
    pred = model.predict(x, t)
    return reverse_drift_from(model, x, t, pred.score, lam), pred


def reverse_drift_from(model: ScoreModel, x: Tensor, t, score: Tensor, lam: float = 0.0) -> Tensor:
    """The reverse drift for a score already computed (no network call)."""
    sde = model.sde
    t = as_time(t, x)
    g2 = broadcast_to_batch(sde.diffusion(t) ** 2, x)
    return sde.drift(x, t) - (1.0 - lam / 2.0) * g2 * score


def reverse_diffusion(model: ScoreModel, t, lam: float = 0.0) -> Tensor:
    """sqrt(1 - lam) g(t)."""
    return (1.0 - lam) ** 0.5 * model.sde.diffusion(as_time(t))


def probability_flow_drift(model: ScoreModel, x: Tensor, t) -> tuple[Tensor, Prediction]:
    """dx/dt = f(x, t) - g(t)^2 s(x, t) / 2 = alpha'_t x0 + sigma'_t eps (finite where alpha_t = 0)."""
    pred = model.predict(x, t)
    return flow_velocity(model, x, t, pred), pred


def flow_velocity(model: ScoreModel, x: Tensor, t, pred: Prediction) -> Tensor:
    """alpha'_t x0 + sigma'_t eps for a prediction already made (no network call)."""
    d_alpha, d_sigma = model.sde.marginal_derivative(as_time(t, x))
    return broadcast_to_batch(d_alpha, x) * pred.x0 + broadcast_to_batch(d_sigma, x) * pred.eps
