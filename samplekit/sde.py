"""Forward SDEs with affine drift: dX = a(t) X dt + g(t) dW, so X_t | X_0 ~ N(alpha_t X_0, sigma_t^2 I).

Every SDE gives a(t) (``drift_coef``), g(t) (``diffusion``), the marginal
coefficients (alpha_t, sigma_t) (``marginal``), the log-SNR lambda_t =
log(alpha_t / sigma_t) and its inverse, the prior N(0, prior_std^2 I) at T,
and the time interval [t_min, T] on which samplers integrate.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch

from samplekit.errors import InvalidArgumentError

Tensor = torch.Tensor


def as_time(t, like: Tensor | None = None) -> Tensor:
    """t as a tensor (float64 unless ``like`` gives a floating dtype and device)."""
    if isinstance(t, Tensor):
        return t if like is None else t.to(dtype=like.dtype, device=like.device)
    if like is not None:
        return torch.as_tensor(t, dtype=like.dtype, device=like.device)
    return torch.as_tensor(t, dtype=torch.float64)


def time_slack(t: Tensor, T: float) -> float:
    """How far a time may stray outside [t_min, T] by rounding: 1e-6 T, or one ulp of t's dtype near T
    (bfloat16 rounds 0.9998 up to 1.0078)."""
    eps = torch.finfo(t.dtype).eps if t.is_floating_point() else 0.0
    return max(1e-6, eps) * T


def _positive(name: str, value: float, owner: str) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise InvalidArgumentError(f"{owner}: {name}={value!r} must be a positive finite number")
    return value


class SDE:
    """Base class: a forward SDE with affine drift f(x, t) = a(t) x and scalar diffusion g(t)."""

    name = "sde"
    #: alpha_t == 1 for all t (VE-type: the drift is zero)
    variance_exploding = False

    def __init__(self, T: float, t_min: float) -> None:
        owner = type(self).__name__
        self.T = _positive("T", T, owner)
        self.t_min = _positive("t_min", t_min, owner)
        if self.t_min >= self.T:
            raise InvalidArgumentError(f"{owner}: t_min={t_min} must be below T={T}")

    # --- the three functions every SDE defines -------------------------------------------------
    def drift_coef(self, t) -> Tensor:
        """a(t) in f(x, t) = a(t) x."""
        raise NotImplementedError

    def diffusion(self, t) -> Tensor:
        """g(t)."""
        raise NotImplementedError

    def marginal(self, t) -> tuple[Tensor, Tensor]:
        """(alpha_t, sigma_t) with X_t | X_0 ~ N(alpha_t X_0, sigma_t^2 I)."""
        raise NotImplementedError

    @property
    def prior_std(self) -> float:
        """Standard deviation of the prior N(0, prior_std^2 I) at T."""
        raise NotImplementedError

    # --- derived ----------------------------------------------------------------------------
    def drift(self, x: Tensor, t) -> Tensor:
        """f(x, t) = a(t) x, with t a scalar or one time per sample."""
        return broadcast_to_batch(self.drift_coef(as_time(t, x)), x) * x

    def marginal_derivative(self, t) -> tuple[Tensor, Tensor]:
        """(alpha'_t, sigma'_t): alpha' = a(t) alpha and, from d sigma^2/dt = 2 a sigma^2 + g^2,
        sigma' = a sigma + g^2 / (2 sigma).  Subclasses with closed forms (rectified flow) override."""
        t = as_time(t)
        alpha, sigma = self.marginal(t)
        a, g = self.drift_coef(t), self.diffusion(t)
        return a * alpha, a * sigma + g * g / (2 * sigma)

    @property
    def alpha_T_is_zero(self) -> bool:
        """True when alpha_T = 0 exactly (rectified flow): x_T carries nothing of x_0, log-SNR(T) = -inf,
        and f, g diverge at T; samplers then need the drift as alpha' x0 + sigma' eps (see ``reverse``)."""
        cached = self.__dict__.get("_alpha_T_zero")  # (T, answer): recomputed if T moves (restricted)
        if cached is None or cached[0] != self.T:
            alpha, _ = self.marginal(torch.tensor(self.T, dtype=torch.float64))
            cached = self.__dict__["_alpha_T_zero"] = (self.T, bool(alpha == 0))
        return cached[1]

    def log_snr(self, t) -> Tensor:
        """lambda_t = log(alpha_t / sigma_t) (-inf where alpha_t = 0)."""
        alpha, sigma = self.marginal(t)
        return torch.log(alpha) - torch.log(sigma)

    def t_from_log_snr(self, lam) -> Tensor:
        """The t with log_snr(t) = lam (bisection on [0, T]; subclasses give closed forms)."""
        lam = as_time(lam)
        lo = torch.zeros_like(lam)
        hi = torch.full_like(lam, self.T)
        for _ in range(80):  # lambda_t is decreasing in t
            mid = (lo + hi) / 2
            above = self.log_snr(mid.clamp_min(1e-300)) > lam
            lo = torch.where(above, mid, lo)
            hi = torch.where(above, hi, mid)
        return (lo + hi) / 2

    def t_from_noise_level(self, s) -> Tensor:
        """The t with sigma_t / alpha_t = s (k-diffusion's sigma): ``t_from_log_snr(-log s)``; subclasses
        where s = t give it exactly."""
        return self.t_from_log_snr(-torch.log(as_time(s)))

    def time_at_log_snr(self, lam) -> Tensor:
        """The model time of log-SNR ``lam`` kept inside [t_min, T]: ``t_from_log_snr`` clamped against
        rounding at the ends (solvers evaluate at log-SNRs between two grid times)."""
        return self.t_from_log_snr(lam).clamp(self.t_min, self.T)

    def prior_sample(
        self,
        shape: Sequence[int],
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device=None,
    ) -> Tensor:
        """x_T ~ N(0, prior_std^2 I)."""
        return self.prior_std * torch.randn(tuple(shape), generator=generator, dtype=dtype, device=device)

    def prior_log_prob(self, x: Tensor) -> Tensor:
        """log N(x; 0, prior_std^2 I), summed over all but the batch dimension."""
        d = x[0].numel()
        var = self.prior_std**2
        sq = x.flatten(1).pow(2).sum(1)
        return -0.5 * sq / var - 0.5 * d * math.log(2 * math.pi * var)

    def check_time(self, t, argument: str = "t") -> Tensor:
        """t as a tensor, or a ValueError if any t lies outside [t_min, T]."""
        t = as_time(t)
        if not torch.isfinite(t).all():
            raise InvalidArgumentError(
                f"{argument} holds non-finite values; pass times in [t_min, T] = [{self.t_min}, {self.T}]"
            )
        slack = time_slack(t, self.T)
        if (t < self.t_min - slack).any() or (t > self.T + slack).any():
            raise InvalidArgumentError(
                f"{argument}={_describe(t)} lies outside [t_min, T] = [{self.t_min}, {self.T}] of {self!r}; "
                f"pass times in that interval"
            )
        return t

    def restricted(self, T: float) -> SDE:
        """The same process on [t_min, T] for a T within (t_min, self.T]: the start time of img2img / SDEdit
        and of a truncated grid.  A copy with ``T`` replaced; an SDE whose coefficients depend on its own
        horizon keeps that horizon apart (as ``VESDE`` does) or overrides this."""
        T = float(T)
        if not self.t_min < T <= self.T * (1 + 1e-12):
            raise InvalidArgumentError(f"T={T:g} must lie in (t_min, T] = ({self.t_min:g}, {self.T:g}] of {self!r}")
        view = copy.copy(self)
        view.T = min(T, self.T)
        return view

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v:g}" for k, v in self.params().items())
        return f"{type(self).__name__}({params})"

    def params(self) -> dict[str, float]:
        return {"T": self.T, "t_min": self.t_min}


def _describe(t: Tensor) -> str:
    if t.numel() == 1:
        return f"{t.item():g}"
    return f"[{t.min().item():g} .. {t.max().item():g}]"


def broadcast_to_batch(coef: Tensor, x: Tensor) -> Tensor:
    """A scalar or per-sample coefficient shaped to multiply x of shape (B, *shape)."""
    coef = coef.to(dtype=x.dtype, device=x.device)
    if coef.ndim == 0:
        return coef
    return coef.reshape(-1, *([1] * (x.ndim - 1)))


class VariancePreserving(SDE):
    """A VP process given by its beta(t) and B(t) = integral_0^t beta (subclasses define both):
    f = -beta(t) x / 2, g = sqrt(beta(t)), alpha_t = exp(-B(t)/2), sigma_t^2 = 1 - exp(-B(t))."""

    def beta(self, t) -> Tensor:
        """beta(t), the noise rate."""
        raise NotImplementedError

    def B(self, t) -> Tensor:
        """B(t) = integral_0^t beta."""
        raise NotImplementedError

    def drift_coef(self, t) -> Tensor:
        return -0.5 * self.beta(t)

    def diffusion(self, t) -> Tensor:
        return torch.sqrt(self.beta(t))

    def marginal(self, t) -> tuple[Tensor, Tensor]:
        B = self.B(t)
        return torch.exp(-0.5 * B), torch.sqrt(-torch.expm1(-B))

    @property
    def prior_std(self) -> float:
        return 1.0


class VPSDE(VariancePreserving):
    """Variance-preserving SDE, beta(t) = beta_min + t (beta_max - beta_min):
    f = -beta(t) x / 2, g = sqrt(beta(t)), alpha_t = exp(-B(t)/2), sigma_t^2 = 1 - exp(-B(t))."""

    name = "vp"

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0, T: float = 1.0, t_min: float = 1e-3) -> None:
        super().__init__(T, t_min)
        self.beta_min = _positive("beta_min", beta_min, type(self).__name__)
        self.beta_max = _positive("beta_max", beta_max, type(self).__name__)
        if self.beta_max < self.beta_min:
            raise InvalidArgumentError(
                f"{type(self).__name__}: beta_max={beta_max} must be at least beta_min={beta_min}"
            )

    def beta(self, t) -> Tensor:
        return self.beta_min + as_time(t) * (self.beta_max - self.beta_min)

    def B(self, t) -> Tensor:
        """B(t) = integral_0^t beta."""
        t = as_time(t)
        return self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t * t

    def _t_from_B(self, B: Tensor) -> Tensor:
        db = self.beta_max - self.beta_min
        if db == 0:
            return B / self.beta_min
        return 2 * B / (self.beta_min + torch.sqrt(self.beta_min**2 + 2 * db * B))

    def t_from_log_snr(self, lam) -> Tensor:
        # sigma^2 / alpha^2 = e^B - 1 = e^{-2 lambda}
        return self._t_from_B(torch.log1p(torch.exp(-2 * as_time(lam))))

    def params(self):
        return {"beta_min": self.beta_min, "beta_max": self.beta_max, **super().params()}


class SubVPSDE(VPSDE):
    """Sub-VP SDE: f = -beta(t) x / 2, g = sqrt(beta(t) (1 - exp(-2 B(t)))),
    alpha_t = exp(-B/2), sigma_t = 1 - exp(-B)."""

    name = "subvp"

    def diffusion(self, t) -> Tensor:
        return torch.sqrt(self.beta(t) * -torch.expm1(-2 * self.B(t)))

    def marginal(self, t) -> tuple[Tensor, Tensor]:
        B = self.B(t)
        return torch.exp(-0.5 * B), -torch.expm1(-B)

    def t_from_log_snr(self, lam) -> Tensor:
        # sigma / alpha = 2 sinh(B / 2) = e^{-lambda}
        return self._t_from_B(2 * torch.asinh(0.5 * torch.exp(-as_time(lam))))


class VESDE(SDE):
    """Variance-exploding SDE, sigma(t) = sigma_min (sigma_max / sigma_min)^t:
    f = 0, g = sigma(t) sqrt(2 log(sigma_max / sigma_min)), alpha_t = 1,
    sigma_t^2 = sigma(t)^2 - sigma_min^2 (exact: X_0 is the data)."""

    name = "ve"
    variance_exploding = True

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 50.0, T: float = 1.0, t_min: float = 1e-5) -> None:
        super().__init__(T, t_min)
        self.sigma_min = _positive("sigma_min", sigma_min, type(self).__name__)
        self.sigma_max = _positive("sigma_max", sigma_max, type(self).__name__)
        if self.sigma_max <= self.sigma_min:
            raise InvalidArgumentError(f"VESDE: sigma_max={sigma_max} must exceed sigma_min={sigma_min}")
        self._log_ratio = math.log(self.sigma_max / self.sigma_min)
        self.horizon = self.T  # the T of sigma(t); stays when ``restricted`` moves the start time

    def sigma_geometric(self, t) -> Tensor:
        """sigma(t) = sigma_min (sigma_max / sigma_min)^(t / T)."""
        return self.sigma_min * torch.exp(as_time(t) / self.horizon * self._log_ratio)

    def drift_coef(self, t) -> Tensor:
        return torch.zeros_like(as_time(t))

    def diffusion(self, t) -> Tensor:
        return self.sigma_geometric(t) * math.sqrt(2 * self._log_ratio / self.horizon)

    def marginal(self, t) -> tuple[Tensor, Tensor]:
        t = as_time(t)
        sigma = self.sigma_min * torch.sqrt(torch.expm1(2 * t / self.horizon * self._log_ratio))
        return torch.ones_like(t), sigma

    @property
    def prior_std(self) -> float:
        return self.sigma_max

    def t_from_log_snr(self, lam) -> Tensor:
        return self.horizon * torch.log1p(torch.exp(-2 * as_time(lam)) / self.sigma_min**2) / (2 * self._log_ratio)

    def params(self):
        return {"sigma_min": self.sigma_min, "sigma_max": self.sigma_max, **super().params()}


class OUSDE(SDE):
    """Ornstein-Uhlenbeck SDE dX = -beta X dt + s dW (constant beta, s):
    alpha_t = exp(-beta t), sigma_t^2 = s^2 (1 - exp(-2 beta t)) / (2 beta); prior its stationary law."""

    name = "ou"

    def __init__(self, beta: float = 1.0, sigma: float = math.sqrt(2.0), T: float = 10.0, t_min: float = 1e-4) -> None:
        super().__init__(T, t_min)
        self.beta = _positive("beta", beta, "OUSDE")
        self.sigma = _positive("sigma", sigma, "OUSDE")

    def drift_coef(self, t) -> Tensor:
        return torch.full_like(as_time(t), -self.beta)

    def diffusion(self, t) -> Tensor:
        return torch.full_like(as_time(t), self.sigma)

    def marginal(self, t) -> tuple[Tensor, Tensor]:
        t = as_time(t)
        var = self.sigma**2 * -torch.expm1(-2 * self.beta * t) / (2 * self.beta)
        return torch.exp(-self.beta * t), torch.sqrt(var)

    @property
    def prior_std(self) -> float:
        return self.sigma / math.sqrt(2 * self.beta)

    def t_from_log_snr(self, lam) -> Tensor:
        # sigma^2 / alpha^2 = s^2 (e^{2 beta t} - 1) / (2 beta) = e^{-2 lambda}
        ratio = 2 * self.beta * torch.exp(-2 * as_time(lam)) / self.sigma**2
        return torch.log1p(ratio) / (2 * self.beta)

    def params(self):
        return {"beta": self.beta, "sigma": self.sigma, **super().params()}


class EDMSDE(SDE):
    """EDM / Karras SDE: sigma(t) = t, f = 0, g = sqrt(2 t), alpha_t = 1, sigma_t = t."""

    name = "edm"
    variance_exploding = True

    def __init__(self, sigma_min: float = 0.002, sigma_max: float = 80.0) -> None:
        super().__init__(T=sigma_max, t_min=sigma_min)
        self.sigma_max = self.T  # the prior's std; stays when ``restricted`` moves the start time

    def drift_coef(self, t) -> Tensor:
        return torch.zeros_like(as_time(t))

    def diffusion(self, t) -> Tensor:
        return torch.sqrt(2 * as_time(t))

    def marginal(self, t) -> tuple[Tensor, Tensor]:
        t = as_time(t)
        return torch.ones_like(t), t

    @property
    def prior_std(self) -> float:
        return self.sigma_max

    def t_from_log_snr(self, lam) -> Tensor:
        return torch.exp(-as_time(lam))

    def t_from_noise_level(self, s) -> Tensor:
        return as_time(s)  # sigma_t / alpha_t = t

    def params(self):
        return {"sigma_min": self.t_min, "sigma_max": self.sigma_max}


class RectifiedFlowSDE(SDE):
    """Rectified flow / the linear interpolant (Liu et al. 2023; Lipman et al. 2023, SD3):
    x_t = (1 - t) x_0 + t eps, i.e. alpha_t = 1 - t, sigma_t = t, T = 1 exactly, prior N(0, I).

    alpha' = -1, sigma' = 1; the velocity u = dx_t/dt = eps - x_0.  As an SDE with affine drift,
    f = (alpha'/alpha) x = -x / (1 - t) and g^2 = 2 sigma (sigma' - (alpha'/alpha) sigma) = 2 t / (1 - t):
    both diverge at t = T = 1 (alpha_T = 0, log-SNR = -inf), where x_T is independent of x_0.  Samplers
    use the probability-flow drift in the finite form alpha' x0 + sigma' eps (``samplekit.reverse``),
    and exponential integrators take alpha_T = 0 through expm1(-inf) = -1.

    t_min = 1e-3 by default: sigma_{t_min} = 1e-3 (log-SNR 6.9), the blur of EDM's sigma_min = 0.002 and
    below VP's sigma_{t_min} ~ 0.01, negligible against data of unit scale; smaller t_min only adds
    low-noise steps that change nothing visible (SD3's scheduler ends its grid at sigma = 0 with one Euler
    step; here the last step lands on t_min and a final denoise is the ``denoise_final`` option).
    """

    name = "rectified_flow"

    def __init__(self, t_min: float = 1e-3) -> None:
        super().__init__(T=1.0, t_min=t_min)

    def drift_coef(self, t) -> Tensor:
        return -1.0 / (1.0 - as_time(t))

    def diffusion(self, t) -> Tensor:
        t = as_time(t)
        return torch.sqrt(2 * t / (1 - t))

    def marginal(self, t) -> tuple[Tensor, Tensor]:
        t = as_time(t)
        return 1 - t, t.clone()

    def marginal_derivative(self, t) -> tuple[Tensor, Tensor]:
        t = as_time(t)
        return torch.full_like(t, -1.0), torch.ones_like(t)

    @property
    def alpha_T_is_zero(self) -> bool:
        return self.T == 1.0  # False on a view restricted below T = 1 (img2img)

    @property
    def prior_std(self) -> float:
        return 1.0

    def t_from_log_snr(self, lam) -> Tensor:
        # (1 - t) / t = e^lambda  ->  t = 1 / (1 + e^lambda) = sigmoid(-lambda); lambda = -inf gives T = 1
        return torch.sigmoid(-as_time(lam))

    def params(self):
        return {"t_min": self.t_min}
