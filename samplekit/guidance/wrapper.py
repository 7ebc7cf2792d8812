"""The base of every score-model wrapper: a ScoreModel whose score is built from other models.

A wrapper is a ``ScoreModel`` (same ``sde``, ``shape``, ``predict``), so every solver runs it
unchanged.  Its ``nfe`` counts the network calls of what it wraps, honestly: the sum of the
wrapped models' own counters plus the calls of any extra network (a classifier).  One
evaluation of a wrapper therefore costs ``nfe_per_eval`` network calls; ``sk.sample(nfe=N)``
plans its steps for ``N // nfe_per_eval`` evaluations so that it still spends at most N calls.
"""

from __future__ import annotations

from typing import Sequence

import torch

from samplekit.score import NonFiniteError, Prediction, ScoreModel
from samplekit.sde import broadcast_to_batch

Tensor = torch.Tensor


class WrappedModel(ScoreModel):
    """A score model computed from ``models`` (and possibly other networks); subclasses give ``score``."""

    #: network calls spent by one evaluation (one ``predict``)
    nfe_per_eval: int = 1

    def __init__(self, models: Sequence[ScoreModel], name: str) -> None:
        models = tuple(models)
        for i, m in enumerate(models):
            if not isinstance(m, ScoreModel):
                raise TypeError(f"model #{i} ({m!r}) is not a ScoreModel; wrap your network with "
                                "sk.ScoreModel.from_eps(...) (or from_score/from_denoiser/from_v) first")
        first = models[0]
        for m in models[1:]:
            if m.shape != first.shape:
                raise ValueError(f"models have different sample shapes {first.shape} and {m.shape}; "
                                 "guide models of one data space")
            if type(m.sde) is not type(first.sde) or m.sde.T != first.sde.T or m.sde.t_min != first.sde.t_min:
                raise ValueError(f"models have different SDEs ({first.sde!r} and {m.sde!r}); "
                                 "build both with the same SDE")
        self.models = models
        self.extra_calls = 0        # calls of networks that are not ScoreModels (e.g. a classifier)
        self._offset = 0
        super().__init__(self._no_net, first.sde, first.shape, "score", name=name)

    @staticmethod
    def _no_net(x: Tensor, t: Tensor) -> Tensor:  # pragma: no cover - predict() is overridden
        raise AssertionError("a WrappedModel computes its score in score(), not through net")

    # --- honest NFE ---------------------------------------------------------------------------
    def _calls(self) -> int:
        return sum(m.nfe for m in self.models) + self.extra_calls

    @property
    def nfe(self) -> int:
        """Network calls made through this wrapper's models and extra networks (resettable: ``nfe = 0``)."""
        return self._calls() + self._offset

    @nfe.setter
    def nfe(self, value: int) -> None:
        self._offset = int(value) - self._calls()

    # --- evaluation ---------------------------------------------------------------------------
    def score(self, x: Tensor, t: Tensor) -> Tensor:
        """The wrapped score at (x, t), t one time per sample; subclasses implement it."""
        raise NotImplementedError

    def predict(self, x: Tensor, t) -> Prediction:
        t = self.check_input(x, t)
        s = self.score(x, t)
        if not torch.isfinite(s).all():
            raise NonFiniteError(f"{self.name} gave a NaN/Inf score; check the wrapped models and the scale")
        alpha, sigma = self.sde.marginal(t)
        alpha, sigma = broadcast_to_batch(alpha, x), broadcast_to_batch(sigma, x)
        return Prediction(s, -sigma * s, (x + sigma * sigma * s) / alpha)


def check_scale(scale) -> float:
    try:
        value = float(scale)
    except (TypeError, ValueError):
        raise TypeError(f"scale={scale!r} must be a real number (the guidance weight w)") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"scale={scale!r} must be finite")
    return value
