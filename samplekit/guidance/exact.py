"""The exact noise-conditional classifier of a Gaussian mixture.

For p_0 = sum_k w_k N(mu_k, S_k), the noised x_t has p_t(x | k) = N(alpha_t mu_k, alpha_t^2 S_k + sigma_t^2 I),
so p_t(y = k | x) is the responsibility of component k under the noised mixture, and
s(x, t) + grad_x log p_t(k | x) = grad_x log p_t(x | k) exactly: classifier guidance with w = 1
samples component k.  Used to prove the guidance wrappers against exact answers.
"""

from __future__ import annotations

import torch

from samplekit.sde import SDE
from samplekit.targets import GaussianMixture

Tensor = torch.Tensor


def mixture_classifier(mixture: GaussianMixture, sde: SDE):
    """classifier(x, t) -> log p_t(k | x) of shape (B, K), differentiable in x."""

    def log_prob_k_given_x_t(x: Tensor, t: Tensor) -> Tensor:
        alpha, sigma = sde.marginal(t)
        return mixture.log_responsibilities(x, alpha, sigma)

    return log_prob_k_given_x_t
