"""The core's meter: the model a solver receives during ``sample``, with the run's network-call cap enforced.

``metered(model, cap)`` is a view of ``model`` (same network, SDE and call counter) whose every
evaluation (``predict``, ``predict_with_output``, and so ``model(x, t)``, ``eps``, ``denoise``) first
checks that its ``nfe_per_eval`` network calls fit in what is left of ``cap``:

    spent + calls_per_eval <= cap,   spent = network calls counted since the view was made,

and otherwise raises :class:`BudgetExceededError` before the call.  The count is the model's own,
made at the network (``ScoreModel.nfe``; a guidance wrapper sums the models it wraps), so the cap
holds for every solver, fixed-step or adaptive, however many evaluations it makes per step.
"""

from __future__ import annotations

import copy

from samplekit.errors import BudgetExceededError
from samplekit.score import ScoreModel


def metered(model: ScoreModel, cap: int, owner: str = "the solver", fix: str = "raise nfe") -> ScoreModel:
    """A view of ``model`` that refuses an evaluation that would pass ``cap`` network calls."""
    view = copy.copy(model)
    start = model.nfe
    per_eval = int(model.nfe_per_eval)
    predict, predict_with_output = model.predict, model.predict_with_output

    def check() -> None:
        spent = model.nfe - start
        if spent + per_eval > cap:
            raise BudgetExceededError(
                f"{owner} would exceed max_nfe={cap}: it has spent nfe={spent} network calls and its next "
                f"model evaluation needs {per_eval}; {fix}"
            )

    def guarded_predict(x, t):
        check()
        return predict(x, t)

    def guarded_predict_with_output(x, t):
        check()
        return predict_with_output(x, t)

    view.predict = guarded_predict  # type: ignore[method-assign]
    view.predict_with_output = guarded_predict_with_output  # type: ignore[method-assign]
    return view


__all__ = ["metered"]
