"""The likelihood integrators' test harness: the exact-score network counted at the call, and the integrator's
own error against the exact log p_{t_min} (the exact p_T in place of the prior)."""

from __future__ import annotations

import torch

import samplekit as sk

F64 = torch.float64


class CountingNet:
    """The raw exact-score network with its own call counter and the times it was called at."""

    def __init__(self, net) -> None:
        self.net, self.calls, self.times = net, 0, []

    def __call__(self, x, t):
        self.calls += 1
        self.times.append(float(torch.as_tensor(t).detach().reshape(-1)[0]))
        return self.net(x, t)


def counted(mixture, sde):
    net = CountingNet(mixture.score_model(sde).net)
    return sk.ScoreModel.from_score(net, sde, (mixture.d,), name="counted"), net


def integrator_error(mixture, sde, x, res):
    """mean |log p_est - log p_{t_min}| / d with the exact p_T at the end (the ODE + trace error only)."""
    a0, s0 = sde.marginal(torch.tensor(sde.t_min, dtype=F64))
    aT, sT = sde.marginal(torch.tensor(sde.T, dtype=F64))
    exact_end = res.log_prob - res.prior_log_prob + mixture.noised_log_prob(res.latent, aT, sT)
    return float((exact_end - mixture.noised_log_prob(x, a0, s0)).abs().mean()) / mixture.d
