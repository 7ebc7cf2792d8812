"""Sampling records no autograd graph unless asked (issue 11, item 1).

Peak memory is measured with torch's own allocator records (the profiler's per-op CPU memory, which
sees every tensor the network allocates, including those autograd keeps for backward): without a
graph the peak of 200 steps equals that of 10; with ``grad=True`` it grows with the steps (so the
measure can tell), and a user can backpropagate through the sampler to a network parameter.
"""

from __future__ import annotations

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

import samplekit as sk
from samplekit.guidance import mixture_classifier
from samplekit.targets import ring2d


class SmallEps(torch.nn.Module):
    """eps(x, t): a 2-512-2 tanh MLP with a time input (its activations are what a graph would keep)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = torch.nn.Sequential(torch.nn.Linear(3, 512), torch.nn.Tanh(), torch.nn.Linear(512, 2))

    def forward(self, x, t):
        return 0.1 * self.body(torch.cat([x, t[:, None].to(x.dtype)], dim=1))


def peak_bytes(fn) -> int:
    """Peak of the running sum of CPU bytes allocated minus freed by torch ops inside ``fn``."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    records = sorted(
        (e.time_range.start, e.self_cpu_memory_usage) for e in prof.events() if e.self_cpu_memory_usage != 0
    )
    live = peak = 0
    for _, nbytes in records:
        live += nbytes
        peak = max(peak, live)
    return peak


def run(model, steps, grad=False):
    return sk.sample(model, "ode_euler", nfe=steps, num_samples=64, seed=0, progress=False, grad=grad)


def test_samples_carry_no_graph_by_default():
    model = sk.ScoreModel.from_eps(SmallEps(), sk.VPSDE(), (2,))
    res = run(model, 5)
    assert res.samples.grad_fn is None and not res.samples.requires_grad


def test_peak_memory_of_200_steps_equals_that_of_10_without_a_graph_and_grows_with_one():
    model = sk.ScoreModel.from_eps(SmallEps(), sk.VPSDE(), (2,))
    run(model, 2)  # warm-up: first-call allocations outside the measure
    short, long = peak_bytes(lambda: run(model, 10)), peak_bytes(lambda: run(model, 200))
    assert short > 0
    assert abs(long - short) <= 0.05 * short + 16_384, f"no_grad peak: 10 steps {short} B, 200 steps {long} B"
    graph10, graph20 = peak_bytes(lambda: run(model, 10, grad=True)), peak_bytes(lambda: run(model, 20, grad=True))
    assert graph20 > 1.5 * graph10 and graph10 > 2 * short, (
        f"with a graph the peak must grow with the steps: {graph10} B at 10, {graph20} B at 20 (no graph: {short} B)"
    )


def test_grad_true_lets_a_user_backpropagate_to_a_network_parameter():
    net = SmallEps()
    model = sk.ScoreModel.from_eps(net, sk.VPSDE(), (2,))
    res = run(model, 8, grad=True)
    assert res.samples.requires_grad
    res.samples.pow(2).mean().backward()
    grad = net.body[0].weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_grad_mode_of_the_caller_is_restored():
    model = sk.ScoreModel.from_eps(SmallEps(), sk.VPSDE(), (2,))
    run(model, 3)
    assert torch.is_grad_enabled()
    with torch.no_grad():
        run(model, 3, grad=True)
        assert not torch.is_grad_enabled()


@pytest.mark.parametrize("solver", ["euler_maruyama", "ode_heun"])
def test_classifier_guidance_takes_its_input_gradient_locally_under_no_grad(solver):
    """The classifier's gradient is taken under a local enable_grad; the samples still carry no graph,
    and with the exact noisy classifier at w = 1 the samples land on the chosen component."""
    mix = ring2d()
    sde = sk.VPSDE()
    guided = sk.guidance.classifier(mix.score_model(sde), mixture_classifier(mix, sde), y=3, scale=1.0)
    res = sk.sample(guided, solver, nfe=400, num_samples=200, seed=0, dtype=torch.float64, progress=False)
    assert res.samples.grad_fn is None and not res.samples.requires_grad
    labels = mix.responsibilities(res.samples).argmax(1)
    assert (labels == 3).float().mean() > 0.97
