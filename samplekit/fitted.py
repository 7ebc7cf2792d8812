"""Fitted samplers: ``sk.fit_solver`` fits a few numbers per step of a solver to one model and one budget.

A fitting method (registry kind "fitter", hook ``samplekit_register_fitters``) minimises the global
error of its student solver against the probability-flow ODE's exact map Phi (the teacher: dopri5 at
rtol = atol = ``teacher_tol``, ``samplekit.likelihood.decode``) on the fit's own draws of x_T:

    L(theta) = E_{x_T} || S_theta(x_T) - Phi_{T -> t_min}(x_T) ||^2 / d.

The fit draws x_T from ``torch.Generator().manual_seed(seed + FIT_SEED_OFFSET)``, a stream that
``sk.sample``'s seeded draws (``NoiseSource``) never use, so a held-out evaluation never sees them.
The fitter starts from its method's defaults on the best published grid (its *baseline*); the result
is checked here, never trusted: a non-finite loss, a grid that is not strictly decreasing, or a fit
loss above the baseline's makes ``fit_solver`` warn, naming why, and return the baseline.

A :class:`FittedSampler` is a small JSON file: the method, the solver it runs, the budget, the grid,
the parameters, the model's content key (``samplekit.fingerprint.model_key``) and its SDE, and the fit
report (network calls, seconds, losses).  ``sk.sample(model, fitted)`` refuses it for another model,
another SDE or another nfe, with the reason.  Fits are cached like ``optimized`` grids, under
``<cache dir>/fitted/<key>.json``, key = sha256 of the model key, SDE, method, options, nfe and fit settings.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from samplekit.errors import InputFileError, InvalidArgumentError, SamplekitError
from samplekit.fingerprint import default_cache_dir, model_key
from samplekit.score import NonFiniteError, ScoreModel

Tensor = torch.Tensor

FORMAT = 1
FIT_SEED_OFFSET = 7_919_000  # the fit's x_T stream; sample()'s NoiseSource never seeds a Generator with it


class FittedSamplerError(SamplekitError, ValueError):
    """A fitted sampler that cannot serve this model, SDE or budget, or a bad fit request."""


class FitFallbackWarning(UserWarning):
    """A fit was rejected (diverged, non-monotone grid, or no better than its baseline): the baseline is returned."""


@dataclass
class FittedSampler:
    """A solver fitted to one model and one budget: what ``sk.sample(model, fitted)`` runs."""

    method: str
    solver: str
    nfe: int
    ts: list[float]
    params: dict
    model_key: str
    sde: dict
    fit: dict = field(default_factory=dict)
    format: int = FORMAT

    def grid(self) -> Tensor:
        return torch.tensor(self.ts, dtype=torch.float64)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(self.to_json())
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> FittedSampler:
        """Read a file written by :meth:`save`; a clear error for a missing, foreign or damaged file."""
        path = Path(path)
        if not path.is_file():
            raise InputFileError(
                f"fitted sampler file {str(path)!r} does not exist; write one with `samplekit fit-solver`"
            )
        try:
            data = json.loads(path.read_text())
            fitted = cls(
                **{k: data[k] for k in ("method", "solver", "nfe", "ts", "params", "model_key", "sde")},
                fit=data.get("fit", {}),
                format=data.get("format", 0),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InputFileError(
                f"{str(path)!r} is not a fitted sampler file ({exc}); write one with `samplekit fit-solver`"
            ) from None
        if fitted.format != FORMAT:
            raise InputFileError(f"{str(path)!r} has format {fitted.format}, this samplekit reads {FORMAT}; fit again")
        return fitted


def describe_sde(sde) -> dict:
    """The SDE as a fitted file records it: class name and parameters."""
    return {"name": type(sde).__name__, "params": {k: float(v) for k, v in sde.params().items()}}


def check_fitted_for(model: ScoreModel, fitted: FittedSampler, nfe: int | None) -> None:
    """Refuse a fitted sampler for another SDE, another model or another budget, naming which and the fix."""
    here = describe_sde(model.sde)
    if fitted.sde != here:
        raise FittedSamplerError(
            f"the fitted sampler was fitted under the SDE {fitted.sde['name']}{fitted.sde['params']}, "
            "but the model runs "
            f"{here['name']}{here['params']}; fit one for this SDE with sk.fit_solver(model, nfe)"
        )
    if fitted.model_key != model_key(model):
        raise FittedSamplerError(
            "the fitted sampler was fitted to another model (its weights' key "
            f"{fitted.model_key[:12]}... differs from this model's {model_key(model)[:12]}...); "
            "fit one for this model with sk.fit_solver(model, nfe)"
        )
    if nfe is not None and int(nfe) != fitted.nfe:
        raise FittedSamplerError(
            f"the fitted sampler was fitted for nfe={fitted.nfe}, not nfe={nfe}: its steps and parameters are for that "
            f"budget; pass nfe={fitted.nfe} (or None), or fit one with sk.fit_solver(model, {nfe})"
        )


def resolve_fitted(model: ScoreModel, fitted: FittedSampler, nfe, ts, options: dict):
    """(solver, ts) that ``sample`` runs for a fitted sampler, after the checks."""
    if ts is not None or options:
        given = ["ts"] * (ts is not None) + sorted(options)
        raise FittedSamplerError(
            f"{', '.join(given)} given with a fitted sampler, which fixes its own grid and parameters; drop them"
        )
    check_fitted_for(model, fitted, nfe)
    return fitter_class(fitted.method).build(fitted), fitted.grid()


def fitter_class(method: str):
    from samplekit.plugins import get_registry

    return get_registry().get("fitter", method).factory


def fit_solver(
    model: ScoreModel,
    nfe: int,
    method: str = "ld3",
    num_fit: int = 512,
    seed: int = 0,
    max_nfe: int | None = None,
    max_seconds: float = 300.0,
    teacher_tol: float = 1e-6,
    cache: bool = True,
    cache_dir=None,
    **options,
) -> FittedSampler:
    """Fit ``method`` to ``model`` at budget ``nfe``; returns a :class:`FittedSampler` for ``sk.sample``.

    :param method: a registered fitter (``samplekit list fitter``): ``amed``, ``epd``, ``ld3``, ``optimized``.
    :param num_fit: how many x_T the loss is taken on (the fit's own draws, from ``seed``).
    :param max_nfe: cap on network calls spent fitting, teacher included (default 3000 x nfe + 2000).
    :param max_seconds: cap on wall time; the fit keeps the best parameters found when a cap is reached
        (the only setting not in the cache key: a fit cut short by time is cached as it is).
    :param teacher_tol: rtol = atol of the dopri5 teacher.
    :param options: the method's options (e.g. ``base="dpmpp_2m"`` for ``ld3``).
    """
    from samplekit.likelihood import decode

    if not isinstance(model, ScoreModel):
        raise InvalidArgumentError(f"model={model!r} must be a ScoreModel (e.g. target.score_model(sde))")
    if isinstance(nfe, bool) or not isinstance(nfe, int) or nfe < 2:
        raise InvalidArgumentError(f"nfe={nfe!r} must be an integer >= 2 (the budget the solver is fitted for)")
    if isinstance(num_fit, bool) or not isinstance(num_fit, int) or num_fit < 2:
        raise InvalidArgumentError(f"num_fit={num_fit!r} must be an integer >= 2 (the loss is a batch mean)")
    if not (max_seconds > 0):
        raise InvalidArgumentError(f"max_seconds={max_seconds!r} must be positive")
    fitter_cls = fitter_class(method)
    try:
        fitter = fitter_cls(**options)
    except TypeError as exc:
        raise InvalidArgumentError(
            f"fitter {method!r}: {exc}; see `samplekit list fitter --json` for its options"
        ) from None
    budget = int(max_nfe) if max_nfe is not None else 3000 * nfe + 2000
    key = _cache_key(model, method, fitter, nfe, num_fit, seed, budget, teacher_tol)
    path = default_cache_dir(cache_dir) / "fitted" / f"{key}.json" if cache else None
    if path is not None and path.exists():
        return FittedSampler.load(path)
    start, nfe0 = time.perf_counter(), model.nfe
    gen = torch.Generator().manual_seed(int(seed) + FIT_SEED_OFFSET)
    x_T = model.sde.prior_sample((num_fit, *model.shape), generator=gen, dtype=torch.float64)
    teacher = decode(model, x_T, rtol=teacher_tol, atol=teacher_tol)
    cap = Cap(model, nfe0, budget, start, float(max_seconds))
    found = fitter.fit(model, nfe, x_T, teacher, cap)
    fitted = _checked(model, method, fitter_cls, found, nfe, x_T, teacher)
    fitted.fit.update(
        nfe_spent=model.nfe - nfe0,
        seconds=time.perf_counter() - start,
        num_fit=num_fit,
        seed=int(seed),
        teacher_tol=teacher_tol,
        max_nfe=budget,
        max_seconds=float(max_seconds),
        capped=cap.hit,
        options={k: v for k, v in fitter.options().items()},
    )
    if path is not None:
        fitted.save(path)
    return fitted


@dataclass
class Cap:
    """The fit's budget: network calls (teacher included) and wall time; ``hit`` records a stop by the cap."""

    model: ScoreModel
    nfe0: int
    max_nfe: int
    start: float
    max_seconds: float
    hit: bool = False

    def allows(self, calls: int) -> bool:
        ok = self.model.nfe - self.nfe0 + calls <= self.max_nfe and time.perf_counter() - self.start < self.max_seconds
        self.hit = self.hit or not ok
        return ok


def fit_loss(model: ScoreModel, solver, ts: Tensor, x_T: Tensor, teacher: Tensor, rows: Tensor | None = None) -> Tensor:
    """L = mean over the batch of ||S(x_T) - Phi(x_T)||^2 / d for ``solver`` on grid ``ts`` (graph kept if
    enabled); ``rows`` selects a minibatch of the fit set."""
    from samplekit.noise import NoiseSource
    from samplekit.sampling import integrate

    if rows is not None:
        x_T, teacher = x_T[rows], teacher[rows]
    out = integrate(solver, model, x_T, ts, NoiseSource(0, x_T.shape[0]))
    diff = (out - teacher).reshape(x_T.shape[0], -1)
    return diff.pow(2).sum(1).mean() / diff.shape[1]


def _checked(model, method, fitter_cls, found, nfe, x_T, teacher) -> FittedSampler:
    """The fitted sampler, or its baseline with a warning if the fit diverged, broke the grid or did not help."""

    def make(params, ts, **fit) -> FittedSampler:
        return FittedSampler(
            method,
            found.solver,
            nfe,
            [float(t) for t in ts],
            params,
            model_key(model),
            describe_sde(model.sde),
            dict(fit),
        )

    base = make(found.baseline_params, found.baseline_ts)
    with torch.no_grad():
        base_loss = float(fit_loss(model, fitter_cls.build(base), base.grid(), x_T, teacher))
        ts = torch.as_tensor(found.ts, dtype=torch.float64)
        reason = None
        if not bool(torch.isfinite(ts).all()) or not bool((ts[1:] < ts[:-1]).all()):
            reason = "its grid is not strictly decreasing"
        else:
            candidate = make(found.params, ts)
            try:
                loss = float(fit_loss(model, fitter_cls.build(candidate), ts, x_T, teacher))
            except NonFiniteError as exc:
                loss, reason = math.nan, f"it diverged ({exc})"
            if reason is not None:
                pass
            elif not math.isfinite(loss):
                reason = "it diverged (non-finite loss on the fit set)"
            elif not loss < base_loss:
                reason = f"its fit loss {loss:.4g} is not below its baseline's {base_loss:.4g}"
    info = {
        "baseline": found.baseline_name,
        "baseline_loss": base_loss,
        "baseline_ts": base.ts,
        "baseline_params": base.params,
        **found.info,
    }
    if reason is not None:
        warnings.warn(
            f"fit_solver({method!r}, nfe={nfe}) fell back to its baseline ({found.baseline_name}): {reason}",
            FitFallbackWarning,
            stacklevel=3,
        )
        base.fit = {**info, "loss": base_loss, "fallback": reason}
        return base
    candidate.fit = {**info, "loss": loss, "fallback": None}
    return candidate


@dataclass
class FitResult:
    """What a fitter returns: the solver it runs, fitted parameters and grid, and its baseline's."""

    solver: str
    params: dict
    ts: list
    baseline_name: str
    baseline_params: dict
    baseline_ts: list
    info: dict = field(default_factory=dict)


def _cache_key(model, method, fitter, nfe, num_fit, seed, budget, teacher_tol) -> str:
    h = hashlib.sha256()
    settings = [
        model_key(model),
        describe_sde(model.sde),
        method,
        fitter.options(),
        nfe,
        num_fit,
        seed,
        budget,
        teacher_tol,
    ]
    h.update(json.dumps(settings, sort_keys=True, default=repr).encode())
    return h.hexdigest()
