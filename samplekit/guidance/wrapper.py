"""The base of every score-model wrapper: a ScoreModel whose score is built from other models.

A wrapper is a ``ScoreModel`` (same ``sde``, ``shape``, ``predict``), so every solver runs it
unchanged.  Its ``nfe`` counts the network calls of what it wraps, honestly: the sum of the
wrapped models' own counters plus the calls of any extra network (a classifier).  One
evaluation of a wrapper costs ``nfe_per_eval`` network calls, derived from what it wraps (so
wrappers compose: observed-score around CFG is 2, CFG of a classifier-guided model 3);
``sk.sample(nfe=N)`` plans its steps for ``N // nfe_per_eval`` evaluations so that it still spends
at most N calls.

A wrapper gives ``evaluate(x, t) -> Prediction`` (score, eps and x0 combined directly, which stays
finite where alpha_t = 0) or, simpler, ``score(x, t)`` (x0 then follows as (x + sigma^2 s) / alpha).
Sampling runs without autograd; a wrapper that needs an input gradient turns it on locally.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch

from samplekit.errors import ArgumentTypeError, InvalidArgumentError
from samplekit.score import NonFiniteError, Prediction, ScoreModel, to_eps_x0
from samplekit.sde import broadcast_to_batch

Tensor = torch.Tensor


class WrappedModel(ScoreModel):
    """A score model computed from ``models`` (and possibly other networks); subclasses give ``score``."""

    def __init__(self, models: Sequence[ScoreModel], name: str) -> None:
        models = tuple(models)
        for i, m in enumerate(models):
            if not isinstance(m, ScoreModel):
                raise ArgumentTypeError(
                    f"model #{i} ({m!r}) is not a ScoreModel; wrap your network with "
                    "sk.ScoreModel.from_eps(...) (or from_score/from_denoiser/from_v) first"
                )
        first = models[0]
        for m in models[1:]:
            if m.shape != first.shape:
                raise InvalidArgumentError(
                    f"models have different sample shapes {first.shape} and {m.shape}; guide models of one data space"
                )
            if type(m.sde) is not type(first.sde) or m.sde.T != first.sde.T or m.sde.t_min != first.sde.t_min:
                raise InvalidArgumentError(
                    f"models have different SDEs ({first.sde!r} and {m.sde!r}); build both with the same SDE"
                )
        self.models = models
        self._extra = [0]  # calls of networks that are not ScoreModels (e.g. a classifier)
        self._offset = [0]
        super().__init__(self._no_net, first.sde, first.shape, "x0", name=name, decoder=first.decoder)

    @staticmethod
    def _no_net(x: Tensor, t: Tensor) -> Tensor:  # pragma: no cover - predict() is overridden
        raise AssertionError("a WrappedModel computes its score in score(), not through net")

    # --- honest NFE ---------------------------------------------------------------------------
    @property
    def extra_calls(self) -> int:
        return self._extra[0]

    @extra_calls.setter
    def extra_calls(self, value: int) -> None:
        self._extra[0] = int(value)

    def _calls(self) -> int:
        return sum(m.nfe for m in self.models) + self.extra_calls

    @property
    def nfe(self) -> int:
        """Network calls made through this wrapper's models and extra networks (resettable: ``nfe = 0``)."""
        return self._calls() + self._offset[0]

    @nfe.setter
    def nfe(self, value: int) -> None:
        self._offset[0] = int(value) - self._calls()

    @property
    def nfe_per_eval(self) -> int:
        """Network calls per evaluation: the wrapped models' together (subclasses add their own networks)."""
        return sum(m.nfe_per_eval for m in self.models)

    # --- inputs and sub-batches ------------------------------------------------------------------
    def condition(self, **inputs):
        raise ArgumentTypeError(
            f"{self.name} is a wrapper; bind network inputs on the models before wrapping them "
            "(model.condition(...)), then build the guidance from the conditioned models"
        )

    def check_inputs(self, num_samples: int) -> None:
        for m in self.models:
            m.check_inputs(num_samples)

    def select(self, index) -> WrappedModel:
        """This wrapper on a sub-batch: each wrapped model's ``select(index)`` (counters shared)."""
        view = copy.copy(self)
        view.models = tuple(m.select(index) for m in self.models)
        view._rebind(index)
        return view

    def _rebind(self, index) -> None:
        """Point the subclass's own references (and any per-sample state) at the selected models."""

    # --- evaluation ---------------------------------------------------------------------------
    def score(self, x: Tensor, t: Tensor) -> Tensor:
        """The wrapped score at (x, t), t one time per sample; subclasses implement it."""
        raise NotImplementedError

    def evaluate(self, x: Tensor, t: Tensor) -> Prediction:
        """score, eps and x0 of the wrapped model at (x, t); by default from ``score``."""
        s = self.score(x, t)
        alpha, sigma = self.sde.marginal(t)
        alpha, sigma = broadcast_to_batch(alpha, x), broadcast_to_batch(sigma, x)
        return Prediction(s, *to_eps_x0("score", s, x, alpha, sigma))

    def predict(self, x: Tensor, t) -> Prediction:
        t = self.check_input(x, t)
        pred = self.evaluate(x, t)
        if not (torch.isfinite(pred.score).all() and torch.isfinite(pred.x0).all()):
            raise NonFiniteError(f"{self.name} gave a NaN/Inf score or x0; check the wrapped models and the scale")
        return pred


def check_scale(scale) -> float:
    try:
        value = float(scale)
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"scale={scale!r} must be a real number (the guidance weight w)") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise InvalidArgumentError(f"scale={scale!r} must be finite")
    return value
