"""Classifier-free guidance (Ho & Salimans 2022), in the convention where w = 1 is the conditional model:

    s_w(x, t) = s_u(x, t) + w (s_c(x, t) - s_u(x, t)),   eps_w = eps_u + w (eps_c - eps_u),

s_c the conditional score (of p_t(x | y)), s_u the unconditional one (of p_t(x)).  w = 0 is the
unconditional model, w = 1 the conditional one, w > 1 extrapolates away from the unconditional
model (Ho & Salimans' w' = w - 1).  Since s_c - s_u = grad_x log p_t(y | x), this is classifier
guidance with an implicit classifier.

NFE: one evaluation calls both networks, so ``nfe`` (the sum of both models' counters) grows by
2 per evaluation and ``nfe_per_eval = 2`` (a batched implementation still runs the network on
2B inputs).
"""

from __future__ import annotations

import torch

from samplekit.guidance.wrapper import WrappedModel, check_scale
from samplekit.score import ScoreModel

Tensor = torch.Tensor


class ClassifierFreeGuidance(WrappedModel):
    """s_u + w (s_c - s_u) from a conditional and an unconditional score model."""

    nfe_per_eval = 2

    def __init__(self, cond_model: ScoreModel, uncond_model: ScoreModel, scale: float = 1.0) -> None:
        if cond_model is uncond_model:
            raise ValueError("cond_model and uncond_model are the same object; classifier-free guidance "
                             "needs the conditional and the unconditional model (two ScoreModels)")
        super().__init__([cond_model, uncond_model],
                         name=f"cfg({getattr(cond_model, 'name', 'cond')}, w={scale})")
        self.cond_model, self.uncond_model = cond_model, uncond_model
        self.scale = check_scale(scale)

    def score(self, x: Tensor, t: Tensor) -> Tensor:
        s_c = self.cond_model.predict(x, t).score
        s_u = self.uncond_model.predict(x, t).score
        return s_u + self.scale * (s_c - s_u)


def classifier_free(cond_model: ScoreModel, uncond_model: ScoreModel, scale: float = 1.0) -> ClassifierFreeGuidance:
    """Classifier-free guidance: a ScoreModel with score s_u + scale * (s_c - s_u)."""
    return ClassifierFreeGuidance(cond_model, uncond_model, scale=scale)
