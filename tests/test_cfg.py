"""Classifier-free guidance on ONE network (issue 11, item 3) and budgets of composed wrappers (issue 17,
defect 2), counted at the raw networks.

The network is an exact class-conditional score of the ring (label K = the whole mixture: the null label of
label dropout), so w = 1 must sample component k, and every identity (w = 1, an interval covering
[t_min, T], rescale 0) is checked to rounding.
"""

from __future__ import annotations

import pytest
import torch

import samplekit as sk
from conditional_nets import CountingNet, ExactConditional
from samplekit.bench.metrics import sliced_wasserstein
from samplekit.targets import ring2d

f64 = torch.float64
SDE = sk.VPSDE()
MIX = ring2d()
NULL = MIX.K


def one_net(sde=SDE, label=3):
    net = ExactConditional(MIX, sde)
    model = sk.ScoreModel.from_score(net, sde, (2,), name="exact_conditional")
    return net, model.condition(class_labels=label), model.condition(class_labels=NULL)


def points(n=16, seed=0):
    return 4 * torch.randn(n, 2, dtype=f64, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("t", [1e-3, 0.1, 0.5, 1.0])
def test_w1_is_the_conditional_model(t):
    _, cond, uncond = one_net()
    cfg = sk.guidance.classifier_free(cond, uncond, scale=1.0)
    x = points()
    p, q = cfg.predict(x, t), cond.predict(x, t)
    for a, b in ((p.score, q.score), (p.eps, q.eps), (p.x0, q.x0)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("w", [0.0, 2.5, 7.0])
def test_the_guided_prediction_is_the_linear_combination_and_rescale_0_and_a_full_interval_change_nothing(w):
    _, cond, uncond = one_net()
    x, t = points(), torch.full((16,), 0.3, dtype=f64)
    plain = sk.guidance.classifier_free(cond, uncond, scale=w)
    s_c, s_u = cond(x, t), uncond(x, t)
    torch.testing.assert_close(plain(x, t), s_u + w * (s_c - s_u), rtol=1e-10, atol=1e-10)
    for other in (
        sk.guidance.classifier_free(cond, uncond, scale=w, rescale=0.0),
        sk.guidance.classifier_free(cond, uncond, scale=w, interval=(SDE.t_min, SDE.T)),
    ):
        p, q = other.predict(x, t), plain.predict(x, t)
        assert torch.equal(p.score, q.score) and torch.equal(p.eps, q.eps) and torch.equal(p.x0, q.x0)


def test_rescale_matches_diffusers_rescale_noise_cfg():
    pipeline = pytest.importorskip("diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion")
    _, cond, uncond = one_net()
    x, t, w, phi = points(), torch.full((16,), 0.4, dtype=f64), 5.0, 0.7
    eps_c, eps_u = cond.predict(x, t).eps, uncond.predict(x, t).eps
    expected = pipeline.rescale_noise_cfg(eps_u + w * (eps_c - eps_u), eps_c, guidance_rescale=phi)
    pred = sk.guidance.classifier_free(cond, uncond, scale=w, rescale=phi).predict(x, t)
    torch.testing.assert_close(pred.eps, expected, rtol=1e-12, atol=1e-12)
    alpha, sigma = (c[:, None] for c in SDE.marginal(t))
    torch.testing.assert_close(pred.x0, (x - sigma * expected) / alpha, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(pred.score, -expected / sigma, rtol=1e-10, atol=1e-10)


def test_the_interval_guides_only_inside_it_with_one_call_outside():
    net, cond, uncond = one_net()
    cfg = sk.guidance.classifier_free(cond, uncond, scale=4.0, interval=(0.2, 0.6))
    plain = sk.guidance.classifier_free(cond, uncond, scale=4.0)
    x = points(8)
    inside, outside = torch.full((8,), 0.4, dtype=f64), torch.full((8,), 0.8, dtype=f64)
    torch.testing.assert_close(cfg(x, inside), plain(x, inside), rtol=0, atol=0)
    calls, rows, nfe = net.calls, net.rows, cfg.nfe
    guided = cfg(x, outside)
    assert (net.calls - calls, net.rows - rows, cfg.nfe - nfe) == (1, 8, 1)  # one call on B rows, counted once
    torch.testing.assert_close(guided, cond(x, outside), rtol=0, atol=0)
    mixed = torch.tensor([0.4, 0.8] * 4, dtype=f64)  # per-sample times on both sides
    expect = torch.where((mixed >= 0.2)[:, None] & (mixed <= 0.6)[:, None], plain(x, mixed), cond(x, mixed))
    torch.testing.assert_close(cfg(x, mixed), expect, rtol=0, atol=0)


def test_one_batched_call_on_2B_rows_per_evaluation_counted_as_two():
    net, cond, uncond = one_net(label=torch.arange(10) % 8)
    cfg = sk.guidance.classifier_free(cond, uncond, scale=3.0)
    assert cfg.nfe_per_eval == 2
    res = sk.sample(cfg, "dpmpp_2m", nfe=30, num_samples=10, seed=0, dtype=f64, progress=False)
    assert net.calls == 15 and net.rows == 15 * 20  # one call per evaluation, on 2B inputs
    assert res.nfe == 2 * net.calls == 30 and cond.nfe == uncond.nfe == 15


def test_different_networks_or_inputs_bound_on_one_side_fall_back_to_two_calls():
    net = ExactConditional(MIX, SDE)
    model = sk.ScoreModel.from_score(net, SDE, (2,))
    cond = model.condition(class_labels=2)
    base = CountingNet(lambda x, t: MIX.noised_score(x, *SDE.marginal(t)))
    uncond = sk.ScoreModel.from_score(base, SDE, (2,))
    cfg = sk.guidance.classifier_free(cond, uncond, scale=2.0)
    cfg(points(4), 0.5)
    assert (net.calls, base.calls, cfg.nfe) == (1, 1, 2)


@pytest.mark.parametrize("stochastic", [False, True], ids=["ode", "sde"])
def test_classifier_free_w1_on_one_network_samples_the_conditional(stochastic):
    """The exact-answer test of tests/test_guidance.py, on one network with a null label."""
    k = 6
    net, cond, uncond = one_net(label=k)
    cfg = sk.guidance.classifier_free(cond, uncond, scale=1.0)
    solver = "euler_maruyama" if stochastic else "ode_heun"
    res = sk.sample(
        cfg, solver=solver, nfe=1000 if stochastic else 400, num_samples=2000, seed=1, dtype=f64, progress=False
    )
    refs = [MIX.component(k).sample(2000, generator=torch.Generator().manual_seed(100 + i)) for i in range(4)]
    floor = sum(sliced_wasserstein(refs[i], refs[i + 1]) for i in range(3)) / 3
    sw = sliced_wasserstein(res.samples, refs[0])
    assert sw < 1.5 * floor, f"{solver}: SW2 {sw:.4f} vs floor {floor:.4f}"
    assert net.rows == res.nfe * 2000


def test_cfg_under_rectified_flow_is_finite_at_T():
    rf = sk.get_sde("rectified_flow")
    exact = MIX.score_model(rf)

    def x0_net(x, t, class_labels):  # the ring's denoiser for the null label, component 3's otherwise
        alpha, sigma = rf.marginal(t)
        comp = MIX.component(3).noised_denoiser(x, alpha, sigma)
        return torch.where(torch.as_tensor(class_labels)[:, None] == NULL, exact.net(x, t), comp)

    model = sk.ScoreModel.from_denoiser(x0_net, rf, (2,))
    cfg = sk.guidance.classifier_free(
        model.condition(class_labels=torch.tensor([3])),
        model.condition(class_labels=torch.tensor([NULL])),
        scale=3.0,
        rescale=0.5,
    )
    pred = cfg.predict(points(4), 1.0)
    assert torch.isfinite(pred.x0).all()
    res = sk.sample(cfg, "dpmpp_2m", nfe=40, num_samples=200, seed=0, dtype=f64, progress=False)
    assert torch.isfinite(res.samples).all()
    assert (MIX.responsibilities(res.samples).argmax(1) == 3).float().mean() > 0.97


# --- issue 17, defect 2: budgets of composed wrappers hold at the raw networks -----------------------
def counted_classifier():
    classifier = sk.guidance.mixture_classifier(MIX, SDE)
    calls = {"n": 0}

    def counting(x, t):
        calls["n"] += 1
        return classifier(x, t)

    return counting, calls


@pytest.mark.parametrize("nfe", [10, 31, 60])
def test_observed_score_around_cfg_spends_at_most_the_budget(nfe):
    net, cond, uncond = one_net(label=1)
    cfg = sk.guidance.classifier_free(cond, uncond, scale=2.0)
    obs = sk.conditioning.Inpainting(torch.tensor([True, False]), torch.tensor([0.5, 0.0]))
    wrapped = sk.conditioning.observed_score(cfg, obs)
    assert wrapped.nfe_per_eval == 2
    res = sk.sample(wrapped, "ddim", nfe=nfe, num_samples=5, seed=0, dtype=f64, progress=False)
    spent = net.rows // 5  # sample-evaluations at the raw network
    assert spent == res.nfe <= nfe and spent >= nfe - 1


@pytest.mark.parametrize("nfe", [9, 15, 31])
def test_cfg_of_a_classifier_guided_model_spends_at_most_the_budget(nfe):
    base_net = CountingNet(lambda x, t: MIX.noised_score(x, *SDE.marginal(t)))
    clf, clf_calls = counted_classifier()
    guided = sk.guidance.classifier(sk.ScoreModel.from_score(base_net, SDE, (2,)), clf, y=2, scale=1.0)
    cond_net = CountingNet(lambda x, t: MIX.component(2).noised_score(x, *SDE.marginal(t)))
    cfg = sk.guidance.classifier_free(sk.ScoreModel.from_score(cond_net, SDE, (2,)), guided, scale=2.0)
    assert cfg.nfe_per_eval == 3
    res = sk.sample(cfg, "ddim", nfe=nfe, num_samples=4, seed=0, dtype=f64, progress=False)
    spent = base_net.calls + clf_calls["n"] + cond_net.calls
    assert spent == res.nfe <= nfe and spent > nfe - 3
