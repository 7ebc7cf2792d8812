"""The torchsde solvers against exact answers: moments and SW2 floor of the ring, counted NFE, seeding."""

from __future__ import annotations

import sys

import pytest
import torch

import samplekit as sk
from exact_checks import distance_and_floor
from samplekit.targets import GaussianMixture, ring2d

SDE_SOLVERS = ("sde_euler", "sde_milstein", "sde_srk", "sde_reversible_heun")
START_CALLS = {"sde_reversible_heun": 1}  # one drift evaluation at x_T before the first step


def moment_error(x, mixture):
    """|mean - exact mean| + ||cov - exact cov||_F."""
    return ((x.mean(0) - mixture.mean).norm() + (torch.cov(x.T) - mixture.covariance).norm()).item()


def test_registered_with_declared_capabilities():
    infos = {c.name: c for c in sk.available("solver")}
    for name in SDE_SOLVERS:
        assert infos[name].plugin == "samplekit_torchsde"
        assert infos[name].info["stochastic"] is True and infos[name].info["adaptive"] is False


@pytest.mark.parametrize("name", SDE_SOLVERS)
def test_weak_convergence_and_floor_on_the_ring(name):
    mixture, sde = ring2d(), sk.VPSDE()
    errors = {}
    for nfe in (8, 48):
        x = sk.sample(
            mixture.score_model(sde), name, nfe=nfe, num_samples=2000, seed=1, dtype=torch.float64, progress=False
        ).samples
        errors[nfe] = moment_error(x, mixture)
    assert errors[48] < errors[8] / 2.5, errors
    assert errors[48] < 0.6, errors  # Monte Carlo scale at n = 2000: ~0.3
    sw, floor = distance_and_floor(x, mixture)
    assert sw < 1.5 * floor, (sw, floor)


@pytest.mark.parametrize("name", SDE_SOLVERS)
def test_nfe_counted_per_step_and_dtypes_follow_input(name):
    model = GaussianMixture([1.0], [[1.0, -2.0]], [[0.5, 2.0]]).score_model(sk.VPSDE())
    seen = []
    res = sk.sample(
        model,
        name,
        nfe=9,
        num_samples=16,
        seed=0,
        dtype=torch.float64,
        progress=False,
        callback=lambda info: seen.append(info.nfe),
    )
    per_step = sk.get_solver(name).capabilities().nfe_per_step
    start = START_CALLS.get(name, 0)
    assert res.nfe == model.nfe <= 9
    assert res.nfe == start + res.n_steps * per_step
    assert [b - a for a, b in zip([start] + seen[:-1], seen)] == [per_step] * res.n_steps
    assert res.samples.dtype == torch.float64
    x32 = sk.sample(model, name, nfe=9, num_samples=16, seed=0, progress=False).samples
    assert x32.dtype == torch.float32 and torch.isfinite(x32).all()


@pytest.mark.parametrize("name", SDE_SOLVERS)
def test_same_seed_same_samples_and_per_sample_seeds_honoured(name):
    """Same seed, same samples; one seed per sample: sample i is the same in any batch (its Brownian
    increments come from its own stream), and the increments are those the NoiseSource draws."""
    model = ring2d().score_model(sk.VPSDE())
    kw = dict(nfe=6, dtype=torch.float64, progress=False)
    a, b = (sk.sample(model, name, seed=7, num_samples=8, **kw).samples for _ in range(2))
    assert torch.equal(a, b)
    assert not torch.allclose(a, sk.sample(model, name, seed=8, num_samples=8, **kw).samples)
    batch = sk.sample(model, name, seed=list(range(8)), num_samples=8, **kw).samples
    alone = sk.sample(model, name, seed=[5], num_samples=1, **kw).samples
    assert torch.equal(batch[5], alone[0])
    pair = sk.sample(model, name, seed=[5, 6], num_samples=2, **kw).samples
    assert torch.equal(pair, batch[5:7])


def test_step_brownian_increments_and_space_time_levy_area():
    """W_i = sqrt(h_i) z and U_i = h_i (W_i / 2 + H_i), H_i = sqrt(h_i / 12) z', in the NoiseSource's draw order;
    repeated queries of a step return the same increment; a query that is not a grid step is refused."""
    from samplekit.noise import NoiseSource
    from samplekit_torchsde.reverse_sde import StepBrownian

    grid = torch.tensor([0.0, 0.5, 0.75, 2.0], dtype=torch.float64)
    like = torch.zeros(4, 3, dtype=torch.float64)
    bm = StepBrownian(grid, NoiseSource([1, 2, 3, 4], 4), like, levy_area="space-time")
    ref = NoiseSource([1, 2, 3, 4], 4)
    W0, U0 = bm(grid[0], grid[1], return_U=True)
    z, z2 = ref.randn((3,), torch.float64), ref.randn((3,), torch.float64)
    assert torch.equal(W0, z * 0.5**0.5)
    assert torch.allclose(U0, 0.5 * (0.5 * W0 + z2 * (0.5 / 12) ** 0.5), rtol=1e-15, atol=0)
    assert torch.equal(bm(grid[0], grid[1]), W0)
    W1 = bm(grid[1], grid[2])
    assert torch.equal(W1, ref.randn((3,), torch.float64) * 0.25**0.5)
    assert bm.shape == (4, 3) and bm.levy_area_approximation == "space-time"
    with pytest.raises(RuntimeError, match="not one grid step"):
        bm(grid[0], grid[2])


def test_milstein_is_euler_for_the_additive_reverse_sde():
    model = ring2d().score_model(sk.VPSDE())
    kw = dict(nfe=10, num_samples=32, seed=3, dtype=torch.float64, progress=False)
    assert torch.equal(sk.sample(model, "sde_milstein", **kw).samples, sk.sample(model, "sde_euler", **kw).samples)


def test_global_rng_untouched():
    model = ring2d().score_model(sk.VPSDE())
    state = torch.get_rng_state()
    sk.sample(model, "sde_srk", nfe=6, num_samples=8, seed=0, progress=False)
    assert torch.equal(torch.get_rng_state(), state)


def test_reversible_heun_needs_its_start_call():
    model = ring2d().score_model(sk.VPSDE())
    with pytest.raises(sk.SolverError, match="nfe=1 is too small"):
        sk.sample(model, "sde_reversible_heun", nfe=1, num_samples=4, progress=False)


def test_missing_torchsde_is_reported_not_fatal(fresh_registry, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchsde", None)
    for module in [m for m in sys.modules if m.startswith("samplekit_torchsde")]:
        monkeypatch.delitem(sys.modules, module)
    registry = fresh_registry(builtins=("samplekit_builtin", "samplekit_torchsde"))
    (failure,) = [f for f in registry.failures if f.plugin == "samplekit_torchsde"]
    assert "torchsde" in failure.error
    assert "euler_maruyama" in [c.name for c in registry.available("solver")]
