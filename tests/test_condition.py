"""``model.condition(**inputs)``: extra network inputs, per-sample or broadcast, checked before any call
(issue 11, item 2), against an exact class-conditional network (a Gaussian mixture's component scores)."""

from __future__ import annotations

import pytest
import torch

import samplekit as sk
from conditional_nets import ExactConditional
from samplekit.targets import ring2d

f64 = torch.float64
SDE = sk.VPSDE()
MIX = ring2d()


def conditional_model():
    net = ExactConditional(MIX, SDE)
    return net, sk.ScoreModel.from_score(net, SDE, (2,), name="exact_conditional")


def labels_of(samples):
    return MIX.responsibilities(samples).argmax(1)


def test_per_sample_labels_follow_their_samples():
    net, model = conditional_model()
    y = torch.arange(64) % 8
    res = sk.sample(
        model.condition(class_labels=y), "dpmpp_2m", nfe=60, num_samples=64, seed=0, dtype=f64, progress=False
    )
    assert (labels_of(res.samples) == y).float().mean() > 0.97
    assert net.rows == res.nfe * 64 and res.nfe == net.calls


@pytest.mark.parametrize("label", [torch.tensor(5), torch.tensor([5]), 5])
def test_a_broadcast_label_conditions_every_sample(label):
    _, model = conditional_model()
    res = sk.sample(
        model.condition(class_labels=label), "dpmpp_2m", nfe=60, num_samples=32, seed=0, dtype=f64, progress=False
    )
    assert (labels_of(res.samples) == 5).float().mean() > 0.97


def test_select_gives_a_sub_batch_the_rows_of_its_samples():
    """Per-sample seeds and per-sample labels: drawing samples 3, 7, 9, 20 alone (model.select) gives exactly
    the rows they have in the full batch."""
    _, model = conditional_model()
    y = torch.arange(24) % 8
    seeds = list(range(100, 124))
    cond = model.condition(class_labels=y)
    full = sk.sample(cond, "euler_maruyama", nfe=30, num_samples=24, seed=seeds, dtype=f64, progress=False).samples
    index = torch.tensor([3, 7, 9, 20])
    sub = sk.sample(
        cond.select(index),
        "euler_maruyama",
        nfe=30,
        num_samples=4,
        seed=[seeds[i] for i in index],
        dtype=f64,
        progress=False,
    ).samples
    assert torch.equal(sub, full[index])
    part = sk.sample(
        cond.select(slice(8, 16)), "euler_maruyama", nfe=30, num_samples=8, seed=seeds[8:16], dtype=f64, progress=False
    ).samples
    assert torch.equal(part, full[8:16])


def test_select_shares_the_call_counter_and_condition_starts_its_own():
    net, model = conditional_model()
    cond = model.condition(class_labels=torch.arange(4))
    sub = cond.select(torch.tensor([0, 1]))
    sub.predict(torch.zeros(2, 2, dtype=f64), 0.5)
    assert (sub.nfe, cond.nfe, model.nfe, net.calls) == (1, 1, 0, 1)
    assert cond.net is model.net and cond.sde is model.sde and model.inputs == {}


def test_a_missing_required_input_is_a_clear_error_before_any_call():
    net, model = conditional_model()
    with pytest.raises(TypeError, match=r"requires input\(s\) 'class_labels'.*model.condition\(class_labels=...\)"):
        sk.sample(model, "ddim", nfe=10, num_samples=4, progress=False)
    with pytest.raises(TypeError, match="class_labels"):
        model.predict(torch.zeros(2, 2), 0.5)
    assert net.calls == 0


def test_a_per_sample_input_of_the_wrong_batch_is_a_clear_error_before_any_call():
    net, model = conditional_model()
    cond = model.condition(class_labels=torch.arange(6))
    with pytest.raises(ValueError, match=r"'class_labels' hold 6 rows.*num_samples=8"):
        sk.sample(cond, "ddim", nfe=10, num_samples=8, progress=False)
    assert net.calls == 0


def test_unknown_and_disagreeing_inputs_are_clear_errors():
    _, model = conditional_model()
    with pytest.raises(TypeError, match="no parameter 'labels'.*class_labels"):
        model.condition(labels=torch.arange(4))

    def net(x, t, a=None, b=None):
        return x

    plain = sk.ScoreModel.from_eps(net, SDE, (2,))
    with pytest.raises(ValueError, match="disagree"):
        plain.condition(a=torch.zeros(4, 3), b=torch.zeros(5))
    with pytest.raises(ValueError, match="at least one input"):
        plain.condition()


def test_inputs_reach_the_network_under_its_own_names_and_broadcast_rows_are_expanded():
    seen = {}

    def net(x, t, encoder_hidden_states, scale=1.0):
        seen.update(ehs=tuple(encoder_hidden_states.shape), scale=scale)
        return torch.zeros_like(x)

    model = sk.ScoreModel.from_eps(net, SDE, (2,)).condition(encoder_hidden_states=torch.ones(1, 7, 3), scale=0.5)
    model.predict(torch.zeros(4, 2), 0.5)
    assert seen == {"ehs": (4, 7, 3), "scale": 0.5}


def test_guidance_wrappers_refuse_condition_and_forward_select():
    _, model = conditional_model()
    y = torch.arange(4)
    cfg = sk.guidance.classifier_free(model.condition(class_labels=y), model.condition(class_labels=8), scale=2.0)
    with pytest.raises(TypeError, match="bind network inputs on the models before wrapping"):
        cfg.condition(class_labels=y)
    sub = cfg.select(torch.tensor([1, 2]))
    assert torch.equal(sub.cond_model.inputs["class_labels"], y[1:3])


def test_select_slices_a_per_sample_observation_of_observed_score():
    from samplekit.conditioning.per_sample import PerSampleInpainting

    model = MIX.score_model(SDE)
    ys = torch.stack([torch.linspace(-3, 3, 6, dtype=f64), torch.zeros(6, dtype=f64)], 1)
    wrapped = sk.conditioning.observed_score(model, PerSampleInpainting(torch.tensor([True, False]), ys))
    full = sk.sample(wrapped, "ddim", nfe=20, num_samples=6, seed=list(range(6)), dtype=f64, progress=False).samples
    index = torch.tensor([1, 4])
    sub = sk.sample(
        wrapped.select(index), "ddim", nfe=20, num_samples=2, seed=[1, 4], dtype=f64, progress=False
    ).samples
    assert torch.equal(sub, full[index])
    torch.testing.assert_close(full[:, 0], ys[:, 0], atol=0.05, rtol=0)  # the known coordinate is kept
    with pytest.raises(ValueError, match="num_samples=4"):
        sk.sample(wrapped, "ddim", nfe=20, num_samples=4, progress=False)
