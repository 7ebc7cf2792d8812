"""Shared exact-answer checks for solver tests: SW2 to exact samples against the exact-vs-exact floor."""

from __future__ import annotations

import math

import torch

from samplekit.bench.metrics import sliced_wasserstein


def distance_and_floor(samples, mixture, repeats: int = 6, seed: int = 123):
    """Mean SW2 of ``samples`` to fresh exact reference sets, and the mean SW2 between two exact sets.

    One exact-vs-exact draw is a noisy floor (the ring's unequal weights make component counts
    fluctuate), so both sides are averaged over ``repeats`` independent reference sets.
    """
    g, n = torch.Generator().manual_seed(seed), samples.shape[0]
    samples = samples.to(torch.float64)
    got, floor = [], []
    for _ in range(repeats):
        reference = mixture.sample(n, g)
        got.append(sliced_wasserstein(samples, reference))
        floor.append(sliced_wasserstein(mixture.sample(n, g), reference))
    return sum(got) / repeats, sum(floor) / repeats


def fitted_slope(steps, errors) -> float:
    """The convergence order -d log(error) / d log(steps), a least-squares fit in log-log."""
    logs = torch.tensor([[math.log(n), math.log(e)] for n, e in zip(steps, errors)], dtype=torch.float64)
    return float(-torch.cov(logs.T)[0, 1] / logs[:, 0].var())
