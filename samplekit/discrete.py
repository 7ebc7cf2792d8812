"""A discrete-time VP process (DDPM / diffusers) as a continuous-time samplekit SDE.

A network trained on timesteps n = 0, ..., N-1 with x_n = sqrt(abar_n) x0 + sqrt(1 - abar_n) eps
(diffusers' ``alphas_cumprod``) is a VP SDE whose integrated rate B(t) = -log alpha_t^2 is known at
N + 1 points.  The mapping between continuous time and timesteps is

    t = (n + 1) / N,        n = N t - 1,          so t_min = 1/N  (n = 0)  and  T = 1  (n = N-1),

and B is interpolated linearly in t between grid points, from B(0) = 0 (the data):

    B(t_n) = -log abar_n,   B piecewise linear,   beta(t) = B'(t) piecewise constant,
    alpha_t = exp(-B(t)/2),   sigma_t^2 = 1 - exp(-B(t)),   f = -beta(t) x / 2,   g = sqrt(beta(t)).

Zero terminal SNR (Lin et al. 2023; diffusers' ``rescale_betas_zero_snr`` in DDIM / DDPM): abar_{N-1} = 0
is accepted; on the last interval abar (not B) is linear in t, B(t) = B(t_{N-1}) - log(1 - (N t - N + 1)),
so alpha_T = 0 exactly and the first step from T is ``sampling.alpha_zero_step`` (a v or x0 network).

On the grid (t = t_n) alpha_t^2 equals abar_n exactly, so a solver stepping between grid times meets
the network only at its training timesteps; between them the network receives the fractional
timestep N t - 1 (diffusers' sinusoidal embeddings accept it).  The ``discrete`` schedule gives
diffusers' inference timesteps (``timestep_spacing`` linspace / leading / trailing, ``steps_offset``), e.g.
``sk.sample(model, "ddim", schedule="discrete", schedule_options={"spacing": "trailing"})``.
"""

from __future__ import annotations

import torch

from samplekit.checks import positive_int
from samplekit.errors import InvalidArgumentError
from samplekit.sde import SDE, VPSDE, VariancePreserving, as_time

Tensor = torch.Tensor
#: N t within this many units in the last place (of N t's dtype) of an integer is that integer: the rounding
#: error of computing (n + 1) / N * N, and nothing more (an evaluation 1e-6 timesteps off the grid stays off it)
GRID_ULPS = 4


class DiscreteVPSDE(VariancePreserving):
    """VP SDE through a discrete ``alphas_cumprod`` grid: timestep n <-> t = (n + 1) / N, log alpha_t
    interpolated linearly in t between grid points (so beta(t) is piecewise constant)."""

    name = "discrete_vp"

    def __init__(self, alphas_cumprod) -> None:
        abar = torch.as_tensor(alphas_cumprod, dtype=torch.float64).flatten()
        if abar.numel() < 2 or not torch.isfinite(abar).all():
            raise InvalidArgumentError("alphas_cumprod must hold at least 2 finite values, one per training timestep")
        if (abar[:-1] <= 0).any() or abar[-1] < 0 or (abar >= 1).any() or (abar[1:] >= abar[:-1]).any():
            raise InvalidArgumentError(
                "alphas_cumprod must decrease strictly within (0, 1) (the last may be 0: zero terminal SNR), "
                "as diffusers' scheduler.alphas_cumprod does; pass the training schedule's values"
            )
        self.num_timesteps = N = abar.numel()
        super().__init__(T=1.0, t_min=1.0 / N)
        self.alphas_cumprod = abar
        self.zero_terminal_snr = bool(abar[-1] == 0)
        self._B = torch.cat([abar.new_zeros(1), -torch.log(abar)])  # B at t = 0, 1/N, ..., 1 (inf at 1: zero SNR)
        self._beta = (self._B[1:] - self._B[:-1]) * N  # piecewise-constant rate (the last: see _last_segment)

    # --- the t <-> timestep mapping ---------------------------------------------------------------
    def _grid_units(self, t: Tensor) -> Tensor:
        """N t, set to the integer n + 1 when it is within ``GRID_ULPS`` units in the last place of it: the
        time of timestep n computed in floating point ((n + 1) / N * N is not always exactly n + 1, by an
        ulp or two) lands exactly on the grid, and every other time keeps its fractional timestep."""
        u = t * self.num_timesteps
        r = u.round()
        ulp = torch.finfo(u.dtype).eps * r.abs().clamp_min(1)
        return torch.where((u - r).abs() <= GRID_ULPS * ulp, r, u)

    def timestep(self, t) -> Tensor:
        """The (fractional) training timestep n = N t - 1 of time t (an exact integer at grid times)."""
        return self._grid_units(as_time(t)) - 1

    def time_of(self, timestep) -> Tensor:
        """t = (n + 1) / N of a training timestep n."""
        return (as_time(timestep) + 1) / self.num_timesteps

    # --- the process ------------------------------------------------------------------------------
    def _segment(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """The grid interval k (t in [k/N, (k+1)/N]) and the position N t - k within it."""
        u = self._grid_units(t)
        k = u.floor().clamp(0, self.num_timesteps - 1)
        return k.long(), u - k

    def B(self, t) -> Tensor:
        """B(t) = -log alpha_t^2, linear in t between grid points (with zero terminal SNR, abar linear on
        the last interval: B = B_{N-1} - log(1 - frac), infinite at T)."""
        t = as_time(t)
        k, frac = self._segment(t)
        B = self._B.to(dtype=t.dtype, device=t.device)
        if not self.zero_terminal_snr:
            return B[k] + frac * (B[k + 1] - B[k])
        last = k == self.num_timesteps - 1
        inner = B[k] + torch.where(last, 0.0, frac) * torch.where(last, 0.0, B[k + 1] - B[k])
        return torch.where(last, B[k] - torch.log1p(-frac), inner)

    def beta(self, t) -> Tensor:
        t = as_time(t)
        k, frac = self._segment(t)
        rate = self._beta.to(dtype=t.dtype, device=t.device)[k]
        if self.zero_terminal_snr:  # d/dt of -log(1 - frac) = N / (1 - frac)
            rate = torch.where(k == self.num_timesteps - 1, self.num_timesteps / (1 - frac), rate)
        return rate

    def t_from_log_snr(self, lam) -> Tensor:
        """Exact inverse of the piecewise-linear B: sigma^2 / alpha^2 = e^B - 1 = e^{-2 lambda}."""
        lam = as_time(lam)
        target = torch.log1p(torch.exp(-2 * lam))
        B = self._B.to(dtype=lam.dtype, device=lam.device)
        k = (torch.searchsorted(B, target.reshape(-1).contiguous()) - 1).clamp(0, self.num_timesteps - 1)
        k = k.reshape(target.shape)
        if self.zero_terminal_snr:
            last = k == self.num_timesteps - 1
            linear = (target - B[k]) / torch.where(last, 1.0, B[k + 1] - B[k])
            frac = torch.where(last, -torch.expm1(B[k] - target), linear)
        else:
            frac = (target - B[k]) / (B[k + 1] - B[k])
        return (k + frac) / self.num_timesteps

    def params(self) -> dict[str, float]:
        return {
            "N": self.num_timesteps,
            "abar_0": float(self.alphas_cumprod[0]),
            "abar_last": float(self.alphas_cumprod[-1]),
        }

    # --- equivalence with a continuous VP SDE (for tests and conversions) ----------------------
    @classmethod
    def from_vp(cls, sde: VPSDE, num_timesteps: int = 1000) -> DiscreteVPSDE:
        """The grid abar_n = alpha^2 of ``sde`` at t = (n + 1) / N, n = 0..N-1 (its T is taken as 1)."""
        t = (torch.arange(num_timesteps, dtype=torch.float64) + 1) / num_timesteps * sde.T
        alpha, _ = sde.marginal(t)
        return cls(alpha**2)


SPACINGS = ("linspace", "leading", "trailing")
CONVENTIONS = ("multistep", "ddim")


def diffusers_timesteps(
    num_train_timesteps: int,
    num_inference_steps: int,
    spacing: str = "linspace",
    steps_offset: int = 0,
    convention: str = "multistep",
) -> Tensor:
    """The training timesteps diffusers' ``set_timesteps(num_inference_steps)`` visits, largest first (int64),
    for its ``timestep_spacing`` and ``steps_offset`` (N = num_train_timesteps, m = num_inference_steps):

    convention "multistep" (DPMSolverMultistepScheduler, UniPCMultistepScheduler, DEISMultistepScheduler):
        linspace  round(linspace(0, N - 1, m + 1))  reversed, the last (0) dropped
        leading   arange(0, m + 1) * (N // (m + 1))  reversed, the last (0) dropped, + steps_offset
    convention "ddim" (DDIMScheduler, DDPMScheduler, EulerDiscreteScheduler, PNDMScheduler, ...):
        linspace  round(linspace(0, N - 1, m))  reversed           (Euler keeps these unrounded)
        leading   arange(0, m) * (N // m)  reversed, + steps_offset
    both:
        trailing  round(arange(N, 0, -N / m)) - 1

    computed as numpy does (linspace: start + i * step with the end point set; arange: start + i * step,
    ceil(N / (N / m)) entries) in float64, and rounded half to even as np.round.
    """
    N, m = int(num_train_timesteps), int(num_inference_steps)
    if spacing not in SPACINGS:
        raise ValueError(
            f"spacing={spacing!r} is unknown; use one of {', '.join(SPACINGS)} (diffusers' timestep_spacing)"
        )
    if convention not in CONVENTIONS:
        raise ValueError(
            f"convention={convention!r} is unknown; use 'multistep' (DPMSolverMultistep, UniPC, DEIS) "
            "or 'ddim' (DDIM, DDPM, Euler)"
        )
    if isinstance(steps_offset, bool) or int(steps_offset) != steps_offset or steps_offset < 0:
        raise ValueError(f"steps_offset={steps_offset!r} must be a non-negative integer (diffusers' steps_offset)")
    f64 = torch.float64
    extra = 1 if convention == "multistep" else 0  # the multistep schedulers space m + 1 points, drop 0
    if spacing == "linspace":
        num = m + extra
        step = (N - 1) / (num - 1) if num > 1 else 0.0
        points = torch.arange(num, dtype=f64) * step
        if num > 1:
            points[-1] = N - 1
        steps = points.round().flip(0)
    elif spacing == "leading":
        num = m + extra
        steps = (torch.arange(num, dtype=f64) * (N // num)).flip(0) + int(steps_offset)
    else:
        steps = torch.arange(N, 0, -N / m, dtype=f64).round() - 1
    steps = steps[:-1] if extra and spacing != "trailing" else steps
    return steps.to(torch.int64)


def discrete_timesteps(
    sde: SDE, n_steps: int, spacing: str = "linspace", steps_offset: int = 0, convention: str = "multistep"
) -> Tensor:
    """The ``discrete`` schedule: diffusers' timesteps for a ``DiscreteVPSDE``, then t_min (timestep 0).

    The grid is ``diffusers_timesteps(N, m, spacing, steps_offset, convention)`` followed by timestep 0
    (t = t_min), with m = n_steps, or m = n_steps + 1 when diffusers' own last timestep is already 0
    ("ddim" convention, linspace, or leading without offset), so that the grid has n_steps steps.
    Defaults: diffusers' DPMSolverMultistepScheduler / UniPC configuration (linspace, no offset);
    Stable Diffusion 1.x configs use ``spacing="leading", steps_offset=1``.

    The last step.  samplekit always integrates down to t_min = timestep 0 (abar_0), as every sampler does;
    diffusers' final step goes from its last timestep k to:
      * DDIM / DDPM with ``set_alpha_to_one=False``, DPM-Solver / UniPC with ``final_sigmas_type="sigma_min"``:
        abar_0, i.e. t_min: the same step as samplekit's.
      * DDIM with ``set_alpha_to_one=True``, DPM-Solver / UniPC with ``final_sigmas_type="zero"`` (their
        default), Euler (sigma = 0): abar = 1, i.e. the x0 prediction at timestep k returned as the sample.
        When k > 0 that is a denoised estimate taken at a large noise level (k = 99 for 10 trailing steps),
        which samplekit never returns; it steps k -> t_min instead.  When diffusers' last timestep is 0
        ("ddim" linspace, leading without offset) the grid already ends there and its final x0 prediction
        is samplekit's ``denoise_final=True`` (one more network call, at t_min).
    """
    if not isinstance(sde, DiscreteVPSDE):
        raise ValueError(
            f"schedule 'discrete' needs a DiscreteVPSDE (a model loaded from a discrete-time "
            f"checkpoint); {sde!r} is continuous: use schedule='uniform' or 'karras'"
        )
    n, N = positive_int(n_steps, "n_steps"), sde.num_timesteps
    if n > N - 1:
        raise ValueError(f"n_steps={n} exceeds the {N - 1} intervals of the training grid; lower nfe")
    steps = diffusers_timesteps(N, n, spacing, steps_offset, convention)
    if steps[-1] == 0:
        steps = diffusers_timesteps(N, n + 1, spacing, steps_offset, convention)
    else:
        steps = torch.cat([steps, steps.new_zeros(1)])
    if steps[0] > N - 1 or not bool((steps[1:] < steps[:-1]).all()):
        raise ValueError(
            f"spacing={spacing!r} with steps_offset={steps_offset} gives timesteps {steps.tolist()} for "
            f"n_steps={n} on {N} training steps: not strictly decreasing within [0, {N - 1}]; "
            "lower the offset or nfe"
        )
    return sde.time_of(steps.to(torch.float64))
