"""Score models: one network, five parametrisations, every call counted.

With X_t = alpha_t x0 + sigma_t eps (the README's notation):
    score  s   = grad_x log p_t(x)
    noise  eps = -sigma_t s
    denoiser D = E[X_0 | X_t = x] = (x + sigma_t^2 s) / alpha_t
    velocity v = alpha_t eps - sigma_t x0
    flow     u = dx_t/dt = alpha'_t x0 + sigma'_t eps   (u = eps - x0 for rectified flow)
and, with D = alpha sigma' - sigma alpha', x0 = (sigma' x - sigma u) / D, eps = (alpha u - alpha' x) / D.
All conversions live here (as DPM-Solver's ``model_wrapper`` and k-diffusion's
``external.py`` keep theirs in one place); solvers never switch on a model type.

Extra network inputs (class labels, text embeddings, a denoiser's extra args) are bound with
``model.condition(**inputs)`` and passed to the network as keyword arguments under its own names;
see ``samplekit.inputs`` for the per-sample / broadcast rule.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from samplekit import finite
from samplekit.errors import ArgumentTypeError, InvalidArgumentError, NetworkError, NonFiniteError, SamplekitError  # noqa: F401
from samplekit.inputs import bind_inputs, check_batch, inputs_for_batch, required_inputs, select_inputs
from samplekit.requests import network_dtype
from samplekit.sde import SDE, as_time, broadcast_to_batch, time_slack

Tensor = torch.Tensor
PARAMETRIZATIONS = ("score", "eps", "x0", "v", "flow")
TIME_CONVENTIONS = ("noise_at_1", "noise_at_0")


def _check_parametrization(parametrization: str) -> None:
    if parametrization not in PARAMETRIZATIONS:
        raise InvalidArgumentError(
            f"parametrization={parametrization!r} is unknown; use one of {', '.join(PARAMETRIZATIONS)}"
        )


def _need_derivatives(d_alpha: Tensor | None, d_sigma: Tensor | None) -> tuple[Tensor, Tensor]:
    if d_alpha is None or d_sigma is None:
        raise InvalidArgumentError(
            "the 'flow' parametrisation needs d_alpha and d_sigma (alpha'_t, sigma'_t from sde.marginal_derivative(t))"
        )
    return d_alpha, d_sigma


def to_eps_x0(
    parametrization: str,
    out: Tensor,
    x: Tensor,
    alpha: Tensor,
    sigma: Tensor,
    d_alpha: Tensor | None = None,
    d_sigma: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """(eps, x0) from a network output in the given parametrisation; alpha, sigma (and for ``flow``
    alpha'_t, sigma'_t) broadcast to x."""
    if parametrization == "score":
        return -sigma * out, (x + sigma * sigma * out) / alpha
    if parametrization == "eps":
        return out, (x - sigma * out) / alpha
    if parametrization == "x0":
        return (x - alpha * out) / sigma, out
    if parametrization == "v":  # eps = (alpha v + sigma x) / n, x0 = (alpha x - sigma v) / n, n = alpha^2 + sigma^2
        norm = alpha * alpha + sigma * sigma
        return (alpha * out + sigma * x) / norm, (alpha * x - sigma * out) / norm
    if parametrization == "flow":  # u = alpha' x0 + sigma' eps and x = alpha x0 + sigma eps, solved for (eps, x0)
        d_alpha, d_sigma = _need_derivatives(d_alpha, d_sigma)
        det = alpha * d_sigma - sigma * d_alpha
        return (alpha * out - d_alpha * x) / det, (d_sigma * x - sigma * out) / det
    _check_parametrization(parametrization)
    raise AssertionError


def to_score(
    parametrization: str,
    out: Tensor,
    x: Tensor,
    alpha: Tensor,
    sigma: Tensor,
    d_alpha: Tensor | None = None,
    d_sigma: Tensor | None = None,
) -> Tensor:
    """The score s from a network output in the given parametrisation."""
    if parametrization == "score":
        return out
    eps, _ = to_eps_x0(parametrization, out, x, alpha, sigma, d_alpha, d_sigma)
    return -eps / sigma


def from_eps_x0(
    parametrization: str,
    eps: Tensor,
    x0: Tensor,
    alpha: Tensor,
    sigma: Tensor,
    d_alpha: Tensor | None = None,
    d_sigma: Tensor | None = None,
) -> Tensor:
    """The network output in the given parametrisation for a given (eps, x0) (finite where alpha = 0)."""
    _check_parametrization(parametrization)
    if parametrization == "score":
        return -eps / sigma
    if parametrization == "flow":
        d_alpha, d_sigma = _need_derivatives(d_alpha, d_sigma)
        return d_alpha * x0 + d_sigma * eps
    return {"eps": eps, "x0": x0, "v": alpha * eps - sigma * x0}[parametrization]


@dataclass(frozen=True)
class Prediction:
    """Everything one network call says about x at time t."""

    score: Tensor
    eps: Tensor
    x0: Tensor


class ScoreModel:
    """A network ``net(x, t, **inputs) -> output`` in one parametrisation, with its SDE and sample shape.

    ``model(x, t)`` returns the score; ``model.predict(x, t)`` returns score, eps and x0 from
    the same single call.  ``model.nfe`` counts network calls.  x has shape (B, *shape);
    t is a scalar or one time per sample, within [sde.t_min, sde.T].

    ``time_convention="noise_at_0"`` (torchcfm / flow_matching): the network's time is tau = T - t
    (tau = 0 is noise) and, for the ``flow`` parametrisation, it returns dx/dtau = -u (data - noise).
    ``decoder`` (optional): latents -> images, applied by ``sk.sample`` to fill ``res.decoded``.
    """

    def __init__(
        self,
        net: Callable[..., Tensor],
        sde: SDE,
        shape: Sequence[int],
        parametrization: str = "score",
        name: str | None = None,
        time_convention: str = "noise_at_1",
        decoder: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        _check_parametrization(parametrization)
        if not callable(net):
            raise ArgumentTypeError(f"net={net!r} is not callable; pass a function or module net(x, t) -> tensor")
        if not isinstance(sde, SDE):
            raise ArgumentTypeError(
                f"sde={sde!r} is not a samplekit SDE; build one with sk.get_sde('vp') or sk.VPSDE()"
            )
        shape = _check_shape(shape)
        if not shape or any(n < 1 for n in shape):
            raise InvalidArgumentError(
                f"shape={shape!r} must be one sample's shape with positive sizes, e.g. (2,) or (1, 8, 8)"
            )
        if time_convention not in TIME_CONVENTIONS:
            raise InvalidArgumentError(
                f"time_convention={time_convention!r} is unknown; use 'noise_at_1' (t = T is noise, "
                "samplekit's and diffusers' convention) or 'noise_at_0' (torchcfm, flow_matching)"
            )
        if decoder is not None and not callable(decoder):
            raise ArgumentTypeError(f"decoder={decoder!r} must be a callable latents -> images, or None")
        self.net = net
        self.sde = sde
        self.shape = shape
        self.parametrization = parametrization
        self.time_convention = time_convention
        self.decoder = decoder
        self.name: str = name if name else str(getattr(net, "__name__", type(net).__name__))
        self.inputs: dict = {}
        self.input_batch: int | None = None  # the leading size of the per-sample inputs, if any
        self._required = required_inputs(net)
        self._counter = [0]

    @classmethod
    def from_score(cls, net, sde: SDE, shape: Sequence[int], **kw) -> ScoreModel:
        """net(x, t) = s(x, t)."""
        return cls(net, sde, shape, "score", **kw)

    @classmethod
    def from_eps(cls, net, sde: SDE, shape: Sequence[int], **kw) -> ScoreModel:
        """net(x, t) = eps(x, t) = -sigma_t s(x, t)."""
        return cls(net, sde, shape, "eps", **kw)

    @classmethod
    def from_denoiser(cls, net, sde: SDE, shape: Sequence[int], **kw) -> ScoreModel:
        """net(x, t) = D(x, t) = (x + sigma_t^2 s) / alpha_t."""
        return cls(net, sde, shape, "x0", **kw)

    @classmethod
    def from_v(cls, net, sde: SDE, shape: Sequence[int], **kw) -> ScoreModel:
        """net(x, t) = v = alpha_t eps - sigma_t x0."""
        return cls(net, sde, shape, "v", **kw)

    @classmethod
    def from_flow(cls, net, sde: SDE, shape: Sequence[int], time_convention: str = "noise_at_1", **kw) -> ScoreModel:
        """net(x, t) = u = dx_t/dt = alpha'_t x0 + sigma'_t eps (rectified flow: eps - x0; SD3, Flux).

        ``time_convention="noise_at_0"``: torchcfm / flow_matching, net(x, tau) = data - noise with
        tau = T - t (= 1 - t for ``rectified_flow``)."""
        return cls(net, sde, shape, "flow", time_convention=time_convention, **kw)

    # --- network-call counting (shared by ``select`` views of one run) -------------------------
    @property
    def nfe(self) -> int:
        """Network calls made through this model (resettable: ``model.nfe = 0``)."""
        return self._counter[0]

    @nfe.setter
    def nfe(self, value: int) -> None:
        self._counter[0] = int(value)

    @property
    def nfe_per_eval(self) -> int:
        """Network calls (per sample) of one evaluation (``predict``): 1 for a plain network."""
        return 1

    # --- bound inputs ---------------------------------------------------------------------------
    def condition(self, **inputs) -> ScoreModel:
        """A new ScoreModel (same net, SDE and shape; its own call counter) that passes ``inputs`` to the
        network as keyword arguments: ``model.condition(class_labels=y)``, ``encoder_hidden_states=emb``.

        A tensor whose first dimension is the number of samples is per-sample (row i goes with sample i,
        through chunking and sharding: see ``select``); a tensor with first dimension 1 is broadcast to
        the batch; 0-d tensors and other values are passed as they are.  Inputs bound earlier are kept
        unless rebound."""
        view = copy.copy(self)
        view.inputs, view.input_batch = bind_inputs(self.net, self.inputs, inputs, self.name)
        view._counter = [0]
        return view

    def select(self, index) -> ScoreModel:
        """The same model for a sub-batch of the run: per-sample inputs sliced by ``index`` (a slice, or an
        index tensor into the run's samples); it shares this model's call counter."""
        view = copy.copy(self)
        view.inputs, view.input_batch = select_inputs(self.inputs, self.input_batch, index)
        return view

    def check_inputs(self, num_samples: int) -> None:
        """Before any network call: every required network input is bound, and per-sample inputs have
        ``num_samples`` rows."""
        self._check_required()
        check_batch(self.inputs, self.input_batch, num_samples, "num_samples")

    def _check_required(self) -> None:
        missing = [name for name in self._required if name not in self.inputs]
        if missing:
            raise ArgumentTypeError(
                f"network {self.name!r} requires input(s) {', '.join(map(repr, missing))} beyond (x, t); "
                f"bind them with model.condition({', '.join(f'{m}=...' for m in missing)})"
            )

    # --- evaluation -----------------------------------------------------------------------------
    def __call__(self, x: Tensor, t) -> Tensor:
        return self.predict(x, t).score

    def check_input(self, x: Tensor, t, argument: str = "x") -> Tensor:
        """Validate x and t; return t as a per-sample tensor of x's dtype and device."""
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise ArgumentTypeError(
                f"{argument} must be a floating-point tensor of shape (batch, {', '.join(map(str, self.shape))})"
            )
        if tuple(x.shape[1:]) != self.shape:
            raise InvalidArgumentError(
                f"{argument} has shape {tuple(x.shape)}; this model takes (batch, "
                f"{', '.join(map(str, self.shape))}) — reshape to one sample per row"
            )
        flag = finite.active()
        if flag is None:
            t = self.sde.check_time(as_time(t, x))
        else:  # inside a sampling loop: note a bad t on the device; the replay names it (finite.py)
            t = as_time(t, x)
            slack = time_slack(t, self.sde.T)
            bad = ~torch.isfinite(t).all() | (t < self.sde.t_min - slack).any() | (t > self.sde.T + slack).any()
            flag.note(bad, functools.partial(_time_failure, self.sde), ("time", id(self.sde)), t)
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        elif t.shape != (x.shape[0],):
            raise InvalidArgumentError(
                f"t has shape {tuple(t.shape)}; pass a scalar or one time per sample, shape ({x.shape[0]},)"
            )
        return t

    def network_output(self, x: Tensor, t: Tensor, inputs: dict | None = None) -> Tensor:
        """One raw network call on (x, t) with the given inputs (default: the bound ones, shaped for x's
        batch), checked for shape and finiteness and returned in x's dtype.  Does not count."""
        if inputs is None:
            self._check_required()
            inputs = inputs_for_batch(self.inputs, x.shape[0], x.device)
        t_net = self.sde.T - t if self.time_convention == "noise_at_0" else t
        weights = network_dtype(self.net)  # a float32 network given float64/bfloat16 samples: its own dtype in
        x_net = x if weights is None or weights == x.dtype else x.to(weights)
        try:
            out = self.net(x_net, t_net if x_net is x else t_net.to(weights), **inputs)
        except (RuntimeError, torch.jit.Error) as exc:
            failure = _network_failure(self.name, x_net, exc)
            if failure is None:
                raise
            raise failure from exc
        if not isinstance(out, Tensor) or out.shape != x.shape:
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise InvalidArgumentError(
                f"network {self.name!r} returned {got} for input {tuple(x.shape)}; "
                "it must return one output of the input's shape"
            )
        finite.check_finite(
            out,
            functools.partial(_nonfinite_output, self.name),
            ("network", self.name),
            t,
        )
        out = out.to(x.dtype)
        return -out if self.time_convention == "noise_at_0" and self.parametrization == "flow" else out

    def prediction(self, out: Tensor, x: Tensor, t: Tensor) -> Prediction:
        """score, eps and x0 from a network output (no call)."""
        alpha, sigma = self.sde.marginal(t)
        if self.parametrization in ("score", "eps") and self.sde.alpha_T_is_zero:
            finite.check(
                (alpha == 0).any(),
                lambda _failure: NonFiniteError(
                    f"model {self.name!r} predicts {self.parametrization}, from which x0 is undefined "
                    f"where alpha_t = 0 (t = {self.sde.T:g} on {self.sde!r}); use a 'flow', 'x0' or "
                    "'v' network on this SDE, or start below T (ts=...)"
                ),
                ("x0 undefined at alpha = 0", id(self)),
            )
        alpha, sigma = broadcast_to_batch(alpha, x), broadcast_to_batch(sigma, x)
        if self.parametrization == "score":
            return Prediction(out, -sigma * out, (x + sigma * sigma * out) / alpha)
        d_alpha = d_sigma = None
        if self.parametrization == "flow":
            d_alpha, d_sigma = self.sde.marginal_derivative(t)
            d_alpha, d_sigma = broadcast_to_batch(d_alpha, x), broadcast_to_batch(d_sigma, x)
        eps, x0 = to_eps_x0(self.parametrization, out, x, alpha, sigma, d_alpha, d_sigma)
        return Prediction(-eps / sigma, eps, x0)

    def predict(self, x: Tensor, t) -> Prediction:
        """score, eps and x0 at (x, t) from one network call."""
        return self.predict_with_output(x, t)[1]

    def predict_with_output(self, x: Tensor, t) -> tuple[Tensor, Prediction]:
        """(the raw network output, the prediction) at (x, t) from one counted network call (what
        ``log_likelihood(method="hermite_pec")`` differentiates in t)."""
        t = self.check_input(x, t)
        out = self.network_output(x, t)
        self._counter[0] += 1
        return out, self.prediction(out, x, t)

    def eps(self, x: Tensor, t) -> Tensor:
        return self.predict(x, t).eps

    def denoise(self, x: Tensor, t) -> Tensor:
        return self.predict(x, t).x0

    def __repr__(self) -> str:
        bound = f", inputs={sorted(self.inputs)}" if self.inputs else ""
        return f"ScoreModel({self.name!r}, {self.parametrization}, sde={self.sde!r}, shape={self.shape}{bound})"


def _network_failure(name: str, x: Tensor, exc: Exception) -> Exception | None:
    """A one-line NetworkError for a TorchScript network that raised, or a dtype the network refused;
    None for other errors (they keep their traceback)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    if isinstance(exc, torch.jit.Error) or "TorchScript interpreter" in str(exc):
        return NetworkError(f"network {name!r} (TorchScript) raised: {(lines[-1] if lines else '')[:300]}")
    text = lines[0] if lines else ""
    if "dtype" in text or "scalar type" in text:
        return NetworkError(
            f"network {name!r} refused {x.dtype} samples ({text[:200]}); pass dtype= the network's dtype "
            "(or x_T/x_start in it), or convert the network"
        )
    return None


def _check_shape(shape) -> tuple[int, ...]:
    """One sample's shape as ints: a sequence of integers (a string such as "22" or a size such as 2.5 is refused,
    not read as (2, 2) or 2)."""
    import operator

    if isinstance(shape, (str, bytes)) or not isinstance(shape, (Sequence, torch.Size)):
        raise ArgumentTypeError(f"shape={shape!r} must be a tuple of ints, one sample's shape, e.g. (2,) or (1, 8, 8)")
    try:
        return tuple(operator.index(n) if not isinstance(n, bool) else _no_bool(n) for n in shape)
    except TypeError:
        raise ArgumentTypeError(
            f"shape={shape!r} must hold integer sizes, e.g. (2,) or (1, 8, 8); {shape!r} holds a non-integer"
        ) from None


def _no_bool(n):
    raise TypeError


def _time_failure(sde: SDE, failure: finite.Failure) -> Exception:
    return _time_error(sde, failure.t.unique() if failure.t is not None else torch.tensor(float("nan")))


def _nonfinite_output(name: str, failure: finite.Failure) -> Exception:
    return NonFiniteError(
        f"network {name!r} returned NaN/Inf at t={failure.span}; check the model's weights and input scaling"
    )


def _time_error(sde: SDE, t: Tensor) -> Exception:
    try:
        sde.check_time(t)
    except SamplekitError as exc:
        return exc
    return NonFiniteError(f"t={_span(t)} was outside [t_min, T] of {sde!r}")


def _span(t: Tensor) -> str:
    lo, hi = t.min().item(), t.max().item()
    return f"{lo:g}" if lo == hi else f"[{lo:g} .. {hi:g}]"
