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
resample (that re-noises x); ``step_hooks.resample`` does.  One evaluation = one network call.
"""

from __future__ import annotations

import torch

from samplekit.conditioning.noising import observed_law
from samplekit.conditioning.observation import LinearObservation
from samplekit.guidance.wrapper import WrappedModel
from samplekit.score import ScoreModel

Tensor = torch.Tensor


class ObservedScore(WrappedModel):
    """The model's score on the free coordinates, the noised observation's score on the observed ones."""

    nfe_per_eval = 1

    def __init__(self, model: ScoreModel, observation: LinearObservation) -> None:
        if not isinstance(observation, LinearObservation):
            raise TypeError(f"observation={observation!r} must be a samplekit.conditioning observation "
                            "(Inpainting, Colorization or DenseObservation)")
        observation.check_shape(model.shape)
        super().__init__([model], name=f"observed({getattr(model, 'name', 'model')})")
        self.model, self.observation = model, observation

    def score(self, x: Tensor, t: Tensor) -> Tensor:
        s = self.model.predict(x, t).score
        z_obs, _ = self.observation.split(x)
        _, s_free = self.observation.split(s)
        mean, var = observed_law(self.observation, self.sde, t, x)
        return self.observation.merge(-(z_obs - mean) / var, s_free)


def observed_score(model: ScoreModel, observation: LinearObservation) -> ObservedScore:
    """A ScoreModel conditioned on a linear observation (replacement as a vector field); any solver."""
    return ObservedScore(model, observation)
