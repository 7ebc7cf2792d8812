"""Guidance wrappers against exact answers (Gaussian mixtures).

For a mixture, p_t(y = k | x) is the responsibility of component k under the noised mixture, so
classifier guidance with w = 1 and that classifier has the exact score of component k; likewise
classifier-free guidance with w = 1 and exact conditional/unconditional scores.  Sampling them
must give component k: SW2 to exact samples within 1.5x of the noise floor, ODE and SDE solver.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import samplekit as sk
from samplekit.bench.metrics import sliced_wasserstein
from samplekit.hookspecs import hookimpl
from samplekit.targets import ring2d
from solver_picks import label, pick

SDE = sk.VPSDE()
MIX = ring2d()
N = 2000


def exact_classifier_model(k, scale=1.0):
    return sk.guidance.classifier(MIX.score_model(SDE), sk.guidance.mixture_classifier(MIX, SDE), y=k, scale=scale)


def floor_and_reference(target, n=N, sets=4):
    refs = [target.sample(n, generator=torch.Generator().manual_seed(100 + i)) for i in range(sets)]
    floor = sum(sliced_wasserstein(refs[i], refs[i + 1]) for i in range(sets - 1)) / (sets - 1)
    return floor, refs[0]


# --- the wrapped scores are exact ---------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(k=st.integers(0, 7), t=st.floats(1e-3, 1.0), seed=st.integers(0, 2**16))
def test_classifier_guidance_w1_is_the_component_score(k, t, seed):
    x = 5 * torch.randn(16, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    tt = torch.full((16,), t, dtype=torch.float64)
    alpha, sigma = SDE.marginal(tt)
    expected = MIX.component(k).noised_score(x, alpha, sigma)
    torch.testing.assert_close(exact_classifier_model(k)(x, tt), expected, rtol=1e-9, atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(w=st.floats(-2.0, 6.0), t=st.floats(1e-3, 1.0), seed=st.integers(0, 2**16))
def test_guided_scores_are_the_linear_combinations(w, t, seed):
    x = 5 * torch.randn(8, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    tt = torch.full((8,), t, dtype=torch.float64)
    alpha, sigma = SDE.marginal(tt)
    s_u = MIX.noised_score(x, alpha, sigma)
    s_c = MIX.component(2).noised_score(x, alpha, sigma)
    cfg = sk.guidance.classifier_free(MIX.component(2).score_model(SDE), MIX.score_model(SDE), scale=w)
    torch.testing.assert_close(cfg(x, tt), s_u + w * (s_c - s_u), rtol=1e-9, atol=1e-9)
    # s_c - s_u = grad log p_t(k | x): classifier guidance with any w is the same field
    clf = exact_classifier_model(2, scale=w)
    torch.testing.assert_close(clf(x, tt), s_u + w * (s_c - s_u), rtol=1e-7, atol=1e-7)


def test_predict_is_consistent_and_follows_dtype():
    x = torch.randn(5, 2)
    pred = exact_classifier_model(1).predict(x, 0.4)
    alpha, sigma = SDE.marginal(torch.tensor(0.4))
    assert pred.score.dtype == torch.float32
    torch.testing.assert_close(pred.eps, -sigma.float() * pred.score)
    torch.testing.assert_close(pred.x0, (x + sigma.float() ** 2 * pred.score) / alpha.float())


def test_guidance_works_under_no_grad():
    with torch.no_grad():
        s = exact_classifier_model(0, scale=2.0)(torch.randn(4, 2, dtype=torch.float64), 0.5)
    assert torch.isfinite(s).all()


# --- exact proofs by sampling -------------------------------------------------------------------
@pytest.mark.parametrize("stochastic", [False, True], ids=["ode", "sde"])
def test_classifier_guidance_w1_samples_component_k(stochastic):
    k = 3
    solver = pick(stochastic)
    floor, ref = floor_and_reference(MIX.component(k))
    guided = exact_classifier_model(k)
    res = sk.sample(guided, solver=solver, nfe=1000, num_samples=N, seed=0, progress=False, dtype=torch.float64)
    sw = sliced_wasserstein(res.samples, ref)
    assert res.nfe <= 1000
    assert sw < 1.5 * floor, f"{label(solver)}: SW2 {sw:.4f} vs floor {floor:.4f}"
    # the unguided sampler is far from component k: the check can fail
    assert sliced_wasserstein(MIX.sample(N, generator=torch.Generator().manual_seed(7)), ref) > 10 * floor


@pytest.mark.parametrize("stochastic", [False, True], ids=["ode", "sde"])
def test_classifier_free_w1_samples_the_conditional(stochastic):
    k = 6
    solver = pick(stochastic)
    floor, ref = floor_and_reference(MIX.component(k))
    cfg = sk.guidance.classifier_free(MIX.component(k).score_model(SDE), MIX.score_model(SDE), scale=1.0)
    res = sk.sample(cfg, solver=solver, nfe=1000, num_samples=N, seed=1, progress=False, dtype=torch.float64)
    sw = sliced_wasserstein(res.samples, ref)
    assert sw < 1.5 * floor, f"{label(solver)}: SW2 {sw:.4f} vs floor {floor:.4f}"


def test_larger_scale_sharpens_towards_the_class():
    """w > 1 samples p(x) p(k|x)^w: closer to mean_k than w = 1 (and no sample lost to other modes)."""
    k = 3
    mean = MIX.means[k]
    spread = {}
    for w in (1.0, 4.0):
        res = sk.sample(
            exact_classifier_model(k, scale=w),
            solver="euler_maruyama",
            nfe=400,
            num_samples=500,
            seed=0,
            progress=False,
            dtype=torch.float64,
        )
        spread[w] = (res.samples - mean).norm(dim=1).mean()
    assert spread[4.0] < spread[1.0]


# --- NFE is counted honestly ---------------------------------------------------------------------
def test_nfe_counts_every_network_call():
    base = MIX.score_model(SDE)
    guided = sk.guidance.classifier(base, sk.guidance.mixture_classifier(MIX, SDE), y=0)
    x = torch.randn(3, 2)
    guided(x, 0.5)
    guided(x, 0.2)
    assert (guided.nfe, guided.score_nfe, guided.classifier_nfe, base.nfe) == (4, 2, 2, 2)
    guided.nfe = 0
    guided(x, 0.5)
    assert guided.nfe == 2
    res = sk.sample(guided, solver="euler_maruyama", nfe=101, num_samples=10, progress=False)
    assert res.nfe == 100 and res.n_steps == 50

    cond, uncond = MIX.component(0).score_model(SDE), MIX.score_model(SDE)
    cfg = sk.guidance.classifier_free(cond, uncond, scale=3.0)
    res = sk.sample(cfg, solver="euler_maruyama", nfe=60, num_samples=10, progress=False)
    assert res.nfe == 60 and cond.nfe == uncond.nfe == 30


def test_budget_smaller_than_one_evaluation_is_an_error():
    with pytest.raises(sk.SolverError, match="2 network calls per evaluation"):
        sk.sample(exact_classifier_model(0), solver="euler_maruyama", nfe=1, num_samples=4, progress=False)


# --- bad input ------------------------------------------------------------------------------------
def test_bad_input_is_named():
    base = MIX.score_model(SDE)
    clf = sk.guidance.mixture_classifier(MIX, SDE)
    with pytest.raises(TypeError, match="log_prob_y_given_x_t"):
        sk.guidance.classifier(base, "not callable", y=0)
    with pytest.raises(TypeError, match="y="):
        sk.guidance.classifier(base, clf, y=1.5)
    with pytest.raises(ValueError, match="non-negative"):
        sk.guidance.classifier(base, clf, y=-1)
    with pytest.raises(ValueError, match="scale"):
        sk.guidance.classifier(base, clf, y=0, scale=math.inf)
    with pytest.raises(ValueError, match="out of range"):
        sk.guidance.classifier(base, clf, y=8)(torch.randn(2, 2), 0.5)
    with pytest.raises(ValueError, match="one label or one per sample"):
        sk.guidance.classifier(base, clf, y=[0, 1, 2])(torch.randn(2, 2), 0.5)
    with pytest.raises(ValueError, match=r"\(B, K\)"):
        sk.guidance.classifier(base, lambda x, t: x.sum(1), y=0)(torch.randn(2, 2), 0.5)
    with pytest.raises(TypeError, match="not a ScoreModel"):
        sk.guidance.classifier(lambda x, t: x, clf, y=0)
    with pytest.raises(ValueError, match="same object"):
        sk.guidance.classifier_free(base, base)
    other = sk.GaussianMixture([1.0], [[0.0, 0.0, 0.0]], [[1.0, 1.0, 1.0]]).score_model(SDE)
    with pytest.raises(ValueError, match="sample shapes"):
        sk.guidance.classifier_free(other, base)
    with pytest.raises(ValueError, match="different SDEs"):
        sk.guidance.classifier_free(MIX.score_model(sk.VESDE()), base)


def test_per_sample_labels_and_log_prob_callable():
    base = MIX.score_model(SDE)
    x = torch.randn(2, 2, dtype=torch.float64)
    clf = sk.guidance.mixture_classifier(MIX, SDE)
    both = sk.guidance.classifier(base, clf, y=torch.tensor([1, 5]))(x, 0.3)
    one = sk.guidance.classifier(base, clf, y=1)(x[:1], 0.3)
    five = sk.guidance.classifier(base, clf, y=5)(x[1:], 0.3)
    torch.testing.assert_close(both, torch.cat([one, five]))
    direct = sk.guidance.classifier(base, lambda x, t: clf(x, t)[:, 5], y=None)(x[1:], 0.3)
    torch.testing.assert_close(direct, five)


# --- the registry hook -----------------------------------------------------------------------------
def test_builtin_guidance_methods_are_registered():
    names = {c.name: c.plugin for c in sk.available("guidance")}
    assert names["classifier"] == names["classifier_free"] == "samplekit_builtin"
    assert sk.guidance.get("classifier") is sk.guidance.classifier


def test_a_plugin_adds_a_guidance_method(fresh_registry):
    class Plugin:
        @hookimpl
        def samplekit_register_guidance(self, register):
            def tempered(model, scale=0.5):
                """Tempering: scale the score (a toy guidance)."""
                return sk.guidance.classifier(model, lambda x, t: -0.5 * (x * x).sum(1) * 0, y=None, scale=scale)

            register("tempered", tempered)

    registry = fresh_registry(Plugin(), builtins=("samplekit_builtin",))
    info = registry.get("guidance", "tempered")
    assert info.summary.startswith("Tempering") and info.plugin != "samplekit_builtin"
    model = info.factory(MIX.score_model(SDE))
    x = torch.randn(3, 2, dtype=torch.float64)
    torch.testing.assert_close(model(x, 0.5), MIX.score_model(SDE)(x, 0.5))
    assert {"classifier", "classifier_free", "tempered"} <= {c.name for c in registry.available("guidance")}
