"""The published and popular schedules (plugin samplekit_schedules) against their sources: k-diffusion's
get_sigmas_* in float64, the Align Your Steps tables, ComfyUI's kl_optimal / beta / sgm_uniform formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import samplekit as sk
from samplekit.errors import SamplekitError
from samplekit.plugins import get_registry
from tests.peers import kdiffusion_sampling

NEW = ("ays", "beta", "polyexponential", "kl_optimal", "exponential", "sgm_uniform")
SD15 = [
    14.6146412293,
    6.4745760956,
    3.8636745985,
    2.6946151520,
    1.8841921177,
    1.3943805092,
    0.9642583904,
    0.6523686016,
    0.3977456272,
    0.1515232662,
    0.0291671582,
]


def schedule(name):
    return get_registry().get("schedule", name).factory


def noise(sde, ts):
    return torch.exp(-sde.log_snr(ts))


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("sde", [sk.VPSDE(), sk.EDMSDE(), sk.VESDE(), sk.SubVPSDE()], ids=repr)
@pytest.mark.parametrize("n", [1, 4, 10, 25])
def test_grid_contract(name, sde, n):
    ts = schedule(name)(sde, n)
    assert ts.dtype == torch.float64 and ts.shape == (n + 1,)
    assert float(ts[0]) == sde.T and float(ts[-1]) == sde.t_min
    assert bool((ts[1:] < ts[:-1]).all())


@pytest.fixture
def float64_default():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.mark.parametrize("n", [3, 7, 10])
def test_against_kdiffusion(float64_default, n):
    K = kdiffusion_sampling()
    sde = sk.EDMSDE()  # s = sigma = t
    s_min, s_max = sde.t_min, sde.T
    pairs = [
        (schedule("exponential")(sde, n), K.get_sigmas_exponential(n + 1, s_min, s_max)),
        (schedule("polyexponential")(sde, n), K.get_sigmas_polyexponential(n + 1, s_min, s_max)),
        (schedule("polyexponential")(sde, n, rho=2.5), K.get_sigmas_polyexponential(n + 1, s_min, s_max, rho=2.5)),
        (schedule("karras")(sde, n), K.get_sigmas_karras(n + 1, s_min, s_max)),
        (schedule("karras")(sde, n, rho=3.0), K.get_sigmas_karras(n + 1, s_min, s_max, rho=3.0)),
    ]
    for ours, theirs in pairs:
        torch.testing.assert_close(ours, theirs[:-1].to(torch.float64), rtol=1e-12, atol=1e-12)
    # on VP the same grids in s = sigma/alpha
    vp = sk.VPSDE()
    lo, hi = (
        float(noise(vp, torch.tensor(vp.t_min, dtype=torch.float64))),
        float(noise(vp, torch.tensor(vp.T, dtype=torch.float64))),
    )
    ours = noise(vp, schedule("polyexponential")(vp, n, rho=2.0))
    torch.testing.assert_close(ours, K.get_sigmas_polyexponential(n + 1, lo, hi, rho=2.0)[:-1], rtol=1e-9, atol=0)


def test_ays_published_table_at_ten_steps():
    sde = sk.EDMSDE(sigma_min=SD15[-1], sigma_max=SD15[0])
    torch.testing.assert_close(schedule("ays")(sde, 10), torch.tensor(SD15, dtype=torch.float64), rtol=1e-12, atol=0)
    # on VP (sigma range 0.045 .. 151) the interior levels are the table's sigmas exactly
    vp = sk.VPSDE()
    s = noise(vp, schedule("ays")(vp, 10))
    torch.testing.assert_close(s[1:-1], torch.tensor(SD15[1:-1], dtype=torch.float64), rtol=1e-9, atol=0)


@pytest.mark.parametrize("n", [4, 15, 30])
def test_ays_loglinear_interpolation(n):
    # the authors' how-to and ComfyUI: log sigma interpolated linearly on [0, 1] (numpy's interp here)
    xs = np.linspace(0, 1, len(SD15))
    expected = np.exp(np.interp(np.linspace(0, 1, n + 1), xs, np.log(SD15[::-1])))[::-1]
    sde = sk.EDMSDE(sigma_min=SD15[-1], sigma_max=SD15[0])
    torch.testing.assert_close(schedule("ays")(sde, n), torch.tensor(expected.copy()), rtol=1e-10, atol=0)


def test_ays_fit_rescale_and_clip_errors():
    sde = sk.EDMSDE()  # [0.002, 80]: wider than SD's table
    s = schedule("ays")(sde, 10, model_type="sdxl", fit="rescale")
    assert float(s[0]) == 80.0 and float(s[-1]) == 0.002 and bool((s[1:] < s[:-1]).all())
    with pytest.raises(SamplekitError, match="model_type"):
        schedule("ays")(sde, 10, model_type="sd3")
    with pytest.raises(SamplekitError, match="fit"):
        schedule("ays")(sde, 10, fit="stretch")
    narrow = sk.EDMSDE(sigma_min=1.0, sigma_max=2.0)  # every interior level clips onto an end
    with pytest.raises(SamplekitError, match="rescale"):
        schedule("ays")(narrow, 10)


@pytest.mark.parametrize("n", [2, 6, 12])
def test_kl_optimal_formula(n):
    sde = sk.EDMSDE()
    u = np.arange(n + 1) / n
    expected = np.tan(u * math.atan(0.002) + (1 - u) * math.atan(80.0))
    torch.testing.assert_close(schedule("kl_optimal")(sde, n), torch.tensor(expected), rtol=1e-12, atol=0)


@pytest.mark.parametrize("n", [3, 10])
def test_beta_quantiles_and_sgm_uniform(n):
    from scipy import stats

    sde = sk.VPSDE()
    q = stats.beta.ppf(1 - np.arange(n + 1) / n, 0.6, 0.6)
    torch.testing.assert_close(
        schedule("beta")(sde, n), torch.tensor(sde.t_min + (sde.T - sde.t_min) * q), rtol=1e-10, atol=1e-12
    )
    q = stats.beta.ppf(1 - np.arange(n + 1) / n, 0.5, 0.7)  # "beta57"
    torch.testing.assert_close(
        schedule("beta")(sde, n, alpha=0.5, beta=0.7),
        torch.tensor(sde.t_min + (sde.T - sde.t_min) * q),
        rtol=1e-10,
        atol=1e-12,
    )
    torch.testing.assert_close(schedule("sgm_uniform")(sde, n), torch.linspace(1.0, 1e-3, n + 1, dtype=torch.float64))


@pytest.mark.parametrize(
    "name, options, word",
    [
        ("karras", {"rho": 0.0}, "rho"),
        ("karras", {"rho": -7}, "rho"),
        ("karras", {"rho": float("nan")}, "rho"),
        ("polyexponential", {"rho": 0}, "rho"),
        ("beta", {"alpha": -1}, "alpha"),
        ("beta", {"beta": float("nan")}, "beta"),
    ],
)
def test_bad_options(name, options, word):
    with pytest.raises(SamplekitError, match=word):
        schedule(name)(sk.VPSDE(), 5, **options)


@pytest.mark.parametrize("name", NEW)
def test_every_new_schedule_samples_through_the_core(name):
    target = sk.GaussianMixture(torch.tensor([1.0]), torch.zeros(1, 2), torch.eye(2)[None])
    model = target.score_model(sk.VPSDE())
    res = sk.sample(
        model, solver="dpmpp_2m", nfe=8, num_samples=64, seed=0, progress=False, schedule=name, dtype=torch.float64
    )
    torch.testing.assert_close(res.ts, schedule(name)(model.sde, 8))
    assert res.nfe == 8 and torch.isfinite(res.samples).all()
