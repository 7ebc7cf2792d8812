"""img2img / SDEdit (issue 11, item 6): ``sk.sample(model, x_start=x, t_start=t)`` noises x to t with the forward
marginal and integrates down from t.  Exact test: x drawn from the target, so x_t is distributed as p_t and
the output must be distributed as the target (SW2 within 1.5x of the exact-sample floor), for several t_start,
an ODE and an SDE solver, a VP SDE and rectified flow; the result also decodes through ``model.decoder``."""

from __future__ import annotations

import pytest
import torch

import samplekit as sk
from exact_checks import distance_and_floor
from samplekit.noise import NoiseSource
from samplekit.targets import ring2d

f64 = torch.float64
MIX = ring2d()


CASES = (
    [(sde, "dpmpp_2m", 60, fraction) for sde in ("vp", "rectified_flow") for fraction in (0.3, 0.9)]
    + [("rectified_flow", "euler_maruyama", 600, 0.6), ("rectified_flow", "ode_dopri5", 5000, 0.6)]
    + [
        pytest.param("vp", solver, nfe, 0.6, marks=pytest.mark.slow)  # the same paths as on rectified flow
        for solver, nfe in (("euler_maruyama", 600), ("ode_dopri5", 5000))
    ]
)


@pytest.mark.parametrize("sde_name, solver, nfe, fraction", CASES)
def test_target_in_target_out(sde_name, solver, nfe, fraction):
    """SW2 averaged over 3 independent sets of 2000 (one set's SW2 fluctuates: the exact transport of one
    draw reached 1.39x the floor), as tests/test_every_solver.py does."""
    sde = sk.get_sde(sde_name)
    t_start = sde.t_min + fraction * (sde.T - sde.t_min)
    x = MIX.sample(6000, generator=torch.Generator().manual_seed(7))
    model = MIX.score_model(sde)
    res = sk.sample(model, solver, nfe=nfe, x_start=x, t_start=t_start, seed=0, progress=False)
    assert res.samples.shape == x.shape and res.nfe <= nfe
    if res.ts is not None:
        assert abs(float(res.ts[0]) - t_start) < 1e-12 and float(res.ts[-1]) == sde.t_min
    pairs = [distance_and_floor(chunk, MIX, seed=123 + k) for k, chunk in enumerate(res.samples.chunk(3))]
    got, floor = (sum(p[i] for p in pairs) / 3 for i in (0, 1))
    assert got <= 1.5 * floor, f"{solver}, t_start={t_start:g}: SW2 {got:.4f} vs floor {floor:.4f}"


def test_the_start_is_the_forward_marginal_from_the_seeded_noise():
    """A one-step grid from t_start with DDIM at eta = 0 and an exact model whose x0 is x_start's: with a point
    mass target, x_t = alpha_t x + sigma_t z and DDIM maps it back to x exactly; so look at the first noise draw."""
    sde = sk.VPSDE()
    model = MIX.score_model(sde)
    x = MIX.sample(16, generator=torch.Generator().manual_seed(1))
    seen = []
    sk.sample(
        model,
        "ddim",
        ts=torch.tensor([0.4, 0.2], dtype=f64),
        x_start=x,
        t_start=0.4,
        seed=5,
        progress=False,
        callback=lambda info: seen.append(info),
    )
    z = NoiseSource(5, 16).randn((2,), dtype=f64)
    alpha, sigma = sde.marginal(torch.tensor(0.4, dtype=f64))
    x_t = alpha * x + sigma * z
    pred = model.predict(x_t, 0.4)
    a1, s1 = sde.marginal(torch.tensor(0.2, dtype=f64))
    torch.testing.assert_close(seen[0].x, a1 * pred.x0 + s1 * pred.eps, rtol=1e-10, atol=1e-10)


def test_same_seed_same_result_and_a_grid_must_start_at_t_start():
    model = MIX.score_model(sk.VPSDE())
    x = MIX.sample(8, generator=torch.Generator().manual_seed(1))
    a = sk.sample(model, "euler_maruyama", nfe=20, x_start=x, t_start=0.5, seed=3, progress=False).samples
    b = sk.sample(model, "euler_maruyama", nfe=20, x_start=x, t_start=0.5, seed=3, progress=False).samples
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match=r"ts\[0\]=0.6 must equal t_start=0.5"):
        sk.sample(model, "ddim", ts=torch.tensor([0.6, 0.1], dtype=f64), x_start=x, t_start=0.5, progress=False)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"t_start": 0.5}, "x_start is missing"),
        ({"x_start": "x"}, "t_start is missing"),
        ({"x_start": "x", "t_start": 1.5}, r"t_start=1.5 must lie in \(t_min, T\]"),
        ({"x_start": "x", "t_start": 0.5, "x_T": "x"}, "x_T and x_start were both given"),
    ],
)
def test_bad_img2img_arguments_are_clear_errors_before_any_call(kwargs, match):
    model = MIX.score_model(sk.VPSDE())
    x = MIX.sample(4, generator=torch.Generator().manual_seed(1))
    kwargs = {k: (x if v == "x" else v) for k, v in kwargs.items()}
    with pytest.raises(ValueError, match=match):
        sk.sample(model, "ddim", nfe=10, progress=False, **kwargs)
    assert model.nfe == 0


def test_decoded_holds_the_decoder_images_of_the_samples_and_is_none_without_one():
    plain = MIX.score_model(sk.VPSDE())
    assert sk.sample(plain, "ddim", nfe=5, num_samples=4, progress=False).decoded is None
    latent = sk.ScoreModel.from_score(plain.net, plain.sde, (2,), decoder=lambda z: torch.tanh(z).repeat(1, 2))
    res = sk.sample(latent, "ddim", nfe=5, num_samples=4, progress=False)
    assert torch.equal(res.decoded, torch.tanh(res.samples).repeat(1, 2))
    with pytest.raises(TypeError, match="decoder"):
        sk.ScoreModel.from_score(plain.net, plain.sde, (2,), decoder="vae")
