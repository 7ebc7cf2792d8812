"""The noise-level view of the probability-flow ODE shared by the k-diffusion-style solvers.

With the noise level s_t = sigma_t / alpha_t = e^{-lambda_t} and y = x / alpha_t (Karras et al. 2022),
the probability-flow ODE of every SDE with Gaussian marginals is

    dy/ds = eps(x_t, t) = (y - x0) / s,

k-diffusion's ``to_d`` and the form in which DPM-Solver-2, LMS, iPNDM, DEIS and gradient estimation
are written.  Euler in s from t to u is DDIM:

    y_u = y_t + (s_u - s_t) eps_t = x0_t + s_u eps_t,   i.e.  x_u = alpha_u x0_t + sigma_u eps_t,

which stays finite where alpha_t = 0 (s_t = inf: rectified flow at T).  The core takes that first
step (``samplekit.sampling.alpha_zero_step``, the same DDIM step): the solvers here never see s_t = inf.
A linear multistep update y_u = y_t + sum_m w_m eps_m, with sum_m w_m = s_u - s_t, is evaluated as
x0_t + s_u eps_t + sum_{m>=1} w_m (eps_m - eps_t) for the same reason.

``quadrature_weights`` gives the w_m of the Lagrange interpolant of eps through the nodes: with
nodes v_m and moments mu_k = int kernel(v) v^k dv it solves sum_m w_m v_m^k = mu_k, k < len(nodes),
which integrates the interpolating polynomial exactly (no numerical quadrature).
"""

from __future__ import annotations

import torch

from samplekit_fast.multistep import scalar

Tensor = torch.Tensor


def level(sde, t) -> Tensor:
    """s_t = sigma_t / alpha_t = exp(-lambda_t) (float64; inf where alpha_t = 0)."""
    return torch.exp(-sde.log_snr(t))


def time_at_level(sde, s: Tensor) -> Tensor:
    """The model time whose noise level is s (log-SNR -log s), kept inside [t_min, T]."""
    return sde.time_at_log_snr(-torch.log(s))


def ddim(x: Tensor, x0: Tensor, eps: Tensor, alpha_u: Tensor, s_u: Tensor) -> Tensor:
    """x_u = alpha_u (x0 + s_u eps): the Euler / DDIM step in s, finite even from s_t = inf."""
    return scalar(alpha_u, x) * (x0 + scalar(s_u, x) * eps)


def multistep_update(
    x: Tensor, x0: Tensor, eps_hist: list[Tensor], weights: list[Tensor], alpha_u: Tensor, s_u: Tensor
) -> Tensor:
    """x_u = alpha_u (x0_t + s_u eps_t + sum_{m>=1} w_m (eps_m - eps_t)), eps_hist[0] = eps_t (newest first)."""
    eps = eps_hist[0]
    y = x0 + scalar(s_u, x) * eps
    for w, eps_m in zip(weights[1:], eps_hist[1:]):
        y = y + scalar(w, x) * (eps_m - eps)
    return scalar(alpha_u, x) * y


def quadrature_weights(nodes: list[Tensor], moments) -> list[Tensor]:
    """Weights w with sum_m w_m v_m^k = mu_k (k < n): the exact integral of the interpolant through v_m.

    ``nodes`` are float64 scalars v_m (v_0 = 0, the current step); ``moments(scale)`` returns
    [mu_k / scale^k] for k < n, where scale normalises the nodes so the Vandermonde system stays well
    conditioned."""
    v = torch.stack([torch.as_tensor(n, dtype=torch.float64) for n in nodes])
    scale = (
        v.abs().max().clamp_min(torch.finfo(torch.float64).tiny)
        if len(nodes) > 1
        else torch.ones((), dtype=torch.float64)
    )
    vander = torch.stack([(v / scale) ** k for k in range(len(nodes))])  # row k: v_m^k
    mu = torch.stack(moments(scale))
    return list(torch.linalg.solve(vander, mu))
