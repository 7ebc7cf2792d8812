"""sample(): exact-score Euler–Maruyama reaches the noise floor; seeds, callbacks, NFE and errors."""

from __future__ import annotations

import pytest
import torch

import samplekit as sk
from exact_checks import distance_and_floor
from samplekit.targets import ring2d

f64 = torch.float64


def test_euler_maruyama_reaches_the_exact_sample_noise_floor():
    """nfe = 1000 on the 8-component ring: SW2 to exact samples within 1.5x of exact-vs-exact."""
    mix, n = ring2d(), 5000
    model = mix.score_model(sk.VPSDE())
    res = sk.sample(model, "euler_maruyama", nfe=1000, num_samples=n, seed=0, dtype=f64, progress=False)
    got, floor = distance_and_floor(res.samples, mix)
    assert res.nfe == 1000 == model.nfe
    assert got <= 1.5 * floor, (got, floor)
    # the criterion discriminates: the same solver with 10 steps is measurably off
    coarse = sk.sample(model, "euler_maruyama", nfe=10, num_samples=n, seed=0, dtype=f64, progress=False)
    assert distance_and_floor(coarse.samples, mix)[0] > 1.5 * floor


def test_per_sample_seeds_give_the_same_sample_in_any_batch():
    model = ring2d().score_model(sk.VESDE())
    full = sk.sample(model, nfe=20, num_samples=6, seed=[10, 11, 12, 13, 14, 15], dtype=f64, progress=False)
    part = sk.sample(model, nfe=20, num_samples=2, seed=[14, 11], dtype=f64, progress=False)
    assert torch.allclose(part.samples, full.samples[[4, 1]], rtol=1e-12, atol=1e-12)
    single = sk.sample(model, nfe=20, num_samples=1, seed=[13], dtype=f64, progress=False)
    assert torch.allclose(single.samples, full.samples[[3]], rtol=1e-12, atol=1e-12)


def test_same_int_seed_same_samples_other_seed_other_samples():
    model = ring2d().score_model(sk.VPSDE())
    a = sk.sample(model, nfe=10, num_samples=50, seed=3, progress=False).samples
    b = sk.sample(model, nfe=10, num_samples=50, seed=3, progress=False).samples
    c = sk.sample(model, nfe=10, num_samples=50, seed=4, progress=False).samples
    assert torch.equal(a, b) and not torch.allclose(a, c)
    assert a.dtype == torch.float32 and a.shape == (50, 2)


def test_callback_gets_a_typed_step_info_for_every_step():
    model = ring2d().score_model(sk.VPSDE())
    seen: list[sk.StepInfo] = []
    res = sk.sample(model, nfe=12, num_samples=8, seed=0, callback=seen.append, progress=False)
    assert [s.step for s in seen] == list(range(12)) and all(s.n_steps == 12 for s in seen)
    assert seen[0].t == pytest.approx(1.0) and seen[-1].t_next == pytest.approx(model.sde.t_min)
    assert all(a.t > b.t for a, b in zip(seen, seen[1:]))
    assert all(s.denoised.shape == (8, 2) for s in seen) and [s.nfe for s in seen] == list(range(1, 13))
    assert torch.equal(seen[-1].x, res.samples)


def test_x_T_and_denoise_final():
    model = ring2d().score_model(sk.VPSDE())
    x_T = torch.zeros(4, 2, dtype=f64)
    res = sk.sample(model, nfe=10, x_T=x_T, seed=0, denoise_final=True, progress=False)
    assert res.samples.dtype == f64 and res.samples.shape == (4, 2)
    assert res.nfe == 10 and res.n_steps == 9  # one call kept for the final Tweedie denoise


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(nfe=0), ValueError, "nfe=0 must be a positive integer"),
        (dict(nfe=2.5), ValueError, "nfe=2.5"),
        (dict(num_samples=0), ValueError, "num_samples=0"),
        (dict(solver="euler_maruyam"), sk.UnknownComponentError, "did you mean 'euler_maruyama'"),
        (dict(bogus=1), sk.SolverError, "has no option 'bogus'"),
        (dict(seed=[1, 2]), ValueError, "seed has 2 entries for num_samples=3"),
        (dict(x_T=torch.zeros(3, 5)), ValueError, r"x_T has shape \(3, 5\)"),
        (dict(nfe=1, denoise_final=True), sk.SolverError, "nfe=1 is too small"),
    ],
)
def test_bad_arguments_fail_before_any_network_call(kwargs, error, match):
    model = ring2d().score_model(sk.VPSDE())
    args = dict(solver="euler_maruyama", nfe=5, num_samples=3, progress=False) | kwargs
    with pytest.raises(error, match=match):
        sk.sample(model, **args)
    assert model.nfe == 0


def test_non_finite_network_output_names_the_step_and_t():
    sde = sk.VPSDE()
    calls = []

    def flaky(x, t):
        calls.append(1)
        return x * float("nan") if len(calls) == 3 else x

    model = sk.ScoreModel.from_eps(flaky, sde, (2,), name="flaky")
    with pytest.raises(sk.NonFiniteError, match=r"step 2 of 10 \(t=0.8002 -> 0.7003\).*'flaky' returned NaN/Inf"):
        sk.sample(model, nfe=10, num_samples=4, progress=False)


def test_model_must_be_a_score_model():
    with pytest.raises(TypeError, match="ScoreModel.from_eps"):
        sk.sample(lambda x, t: x)


def test_default_budget_is_100_for_fixed_step_and_a_generous_cap_for_adaptive_solvers():
    model = ring2d().score_model(sk.VPSDE())
    assert sk.sample(model, "euler_maruyama", num_samples=8, progress=False).nfe == 100
    tight = sk.sample(model, "ode_dopri5", num_samples=8, progress=False, rtol=1e-6, atol=1e-6)
    assert 100 < tight.nfe == model.nfe - 100 <= 10_000  # would have hit a cap of 100
    with pytest.raises(sk.SolverError, match="max_nfe=100"):
        sk.sample(model, "ode_dopri5", nfe=100, num_samples=8, progress=False, rtol=1e-6, atol=1e-6)
