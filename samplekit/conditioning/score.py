"""Conditioning as a score wrapper: works with EVERY solver, adaptive ODE solvers included.

In the decoupled coordinates z = (z_o, z_u) of the observation, the wrapped score is

    score_o(x, t) = -(z_o - alpha_t ybar) / (sigma_t^2 + alpha_t^2 tau^2),   score_u(x, t) = s_u(x, t),

i.e. the observed coordinates get the exact score of their noised law z_o(t) | y (see ``noising``)
and the free ones the model's score at the current x.  This is replacement written as a vector
field: under the probability-flow ODE the observed coordinates follow
z_o(t) = alpha_t ybar + sqrt(sigma_t^2 + alpha_t^2 tau^2) eps exactly (under the reverse SDE, a
bridge with that marginal), and the free coordinates are driven by s_u given them — the same
approximation p_t(z_u | z_o, y) ~ p_t(z_u | z_o) as score_sde's replacement, but smooth in x, so
any solver (multistep, high-order, adaptive) integrates it without a hook.  It cannot
resample (that re-noises x); ``step_hooks.resample`` does.  One evaluation = the wrapped model's
calls (``nfe_per_eval`` is derived: 2 around classifier-free guidance).  eps and x0 are combined
directly: on the observed coordinates eps_o = sigma (z_o - alpha ybar) / v and
x0_o = (alpha tau^2 z_o + sigma^2 ybar) / v, v = sigma^2 + alpha^2 tau^2, finite where alpha_t = 0.
"""

from __future__ import annotations

import copy

import torch

from samplekit.conditioning.noising import observed_law
from samplekit.conditioning.observation import LinearObservation
from samplekit.errors import ArgumentTypeError
from samplekit.guidance.wrapper import WrappedModel
from samplekit.score import Prediction, ScoreModel
from samplekit.sde import as_time

Tensor = torch.Tensor


class ObservedScore(WrappedModel):
    """The model's score on the free coordinates, the noised observation's score on the observed ones."""

    def __init__(self, model: ScoreModel, observation: LinearObservation) -> None:
        if not isinstance(observation, LinearObservation):
            raise ArgumentTypeError(
                f"observation={observation!r} must be a samplekit.conditioning observation "
                "(Inpainting, Colorization or DenseObservation)"
            )
        observation.check_shape(model.shape)
        super().__init__([model], name=f"observed({getattr(model, 'name', 'model')})")
        self.model, self.observation = model, observation

    def _rebind(self, index) -> None:
        (self.model,) = self.models
        if hasattr(self.observation, "batch"):  # one observation per sample: keep the selected rows
            obs = copy.copy(self.observation)
            pick = index if isinstance(index, slice) else torch.as_tensor(index)
            obs.ybar, obs.singular_values = obs.ybar[pick], obs.singular_values[pick]
            self.observation = obs

    def check_inputs(self, num_samples: int) -> None:
        super().check_inputs(num_samples)
        if hasattr(self.observation, "check_batch"):
            self.observation.check_batch(num_samples)

    def evaluate(self, x: Tensor, t: Tensor) -> Prediction:
        pred = self.model.predict(x, t)
        obs = self.observation
        z_obs, _ = obs.split(x)
        mean, var = observed_law(obs, self.sde, t, x)
        alpha, sigma = obs_coefficients(self.sde, t, x)
        tau2 = (obs.tau.to(dtype=x.dtype, device=x.device)) ** 2
        ybar = obs.ybar.to(dtype=x.dtype, device=x.device)
        eps_o = sigma * (z_obs - mean) / var
        x0_o = (alpha * tau2 * z_obs + sigma * sigma * ybar) / var
        merged = [
            obs.merge(o, obs.split(full)[1])
            for o, full in ((-(z_obs - mean) / var, pred.score), (eps_o, pred.eps), (x0_o, pred.x0))
        ]
        return Prediction(*merged)


def observed_score(model: ScoreModel, observation: LinearObservation) -> ObservedScore:
    """A ScoreModel conditioned on a linear observation (replacement as a vector field); any solver."""
    return ObservedScore(model, observation)


def obs_coefficients(sde, t, like: Tensor) -> tuple[Tensor, Tensor]:
    """alpha_t, sigma_t shaped (B, 1) (or scalars) against observed coordinates (B, r)."""
    alpha, sigma = sde.marginal(as_time(t, like))
    if alpha.ndim == 1:
        alpha, sigma = alpha[:, None], sigma[:, None]
    return alpha, sigma
