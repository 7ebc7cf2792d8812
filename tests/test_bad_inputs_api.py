"""Bad inputs to the Python API (issue 14): each row is a call, the samplekit error it must raise and a
fragment of its message; the error is raised before the network is called once (counted at the raw net).

Rows marked ``silent`` gave a silently wrong result before (wrong seeds, ignored arguments): the row
proves each is now refused.  Valid inputs that used to be refused (numpy integers) are tested below.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import samplekit as sk
from samplekit.errors import SamplekitError
from samplekit.targets import ring2d

f64 = torch.float64


class CountingNet:
    """The exact eps of the ring under VP, counting its own calls (the raw network)."""

    def __init__(self) -> None:
        self.exact = ring2d().score_model(sk.VPSDE())
        self.calls = 0

    def __call__(self, x, t):
        self.calls += 1
        return self.exact.eps(x, t)


@pytest.fixture
def counted():
    net = CountingNet()
    return net, sk.ScoreModel.from_eps(net, sk.VPSDE(), shape=(2,))


def sample(**kwargs):
    return lambda model: sk.sample(
        model, **({"solver": "euler_maruyama", "nfe": 5, "num_samples": 3, "progress": False} | kwargs)
    )


nan_x = torch.full((3, 2), float("nan"))
grid = torch.tensor([1.0, 0.5, 0.2, 1e-3], dtype=f64)

# (id, call on the counted model, error class, message fragment, silent wrong result before?)
ROWS = [
    ("nfe zero", sample(nfe=0), sk.errors.InvalidArgumentError, "nfe=0 must be a positive integer", False),
    ("nfe float", sample(nfe=2.5), sk.errors.InvalidArgumentError, "nfe=2.5 must be a positive integer", False),
    ("nfe string", sample(nfe="10"), sk.errors.InvalidArgumentError, "nfe='10'", False),
    ("nfe bool", sample(nfe=True), sk.errors.InvalidArgumentError, "nfe=True", False),
    ("num_samples zero", sample(num_samples=0), sk.errors.InvalidArgumentError, "num_samples=0", False),
    ("num_samples float", sample(num_samples=3.0), sk.errors.InvalidArgumentError, "num_samples=3.0", False),
    (
        "seed floats",
        sample(seed=[0.1, 0.2, 0.3]),
        sk.errors.InvalidArgumentError,
        "seed[0]=0.1 must be an integer",
        True,
    ),
    ("seed string", sample(seed="123"), sk.errors.InvalidArgumentError, "not a string", True),
    ("seed float", sample(seed=1.5), sk.errors.InvalidArgumentError, "seed=1.5 must be an integer", True),
    ("seed 2**70", sample(seed=2**70), sk.errors.InvalidArgumentError, "out of range: a seed is an integer in", False),
    ("seed negative", sample(seed=-1), sk.errors.InvalidArgumentError, "seed=-1 is out of range", False),
    ("seed bool", sample(seed=True), sk.errors.InvalidArgumentError, "not a bool", False),
    (
        "seed list length",
        sample(seed=[1, 2]),
        sk.errors.InvalidArgumentError,
        "seed has 2 entries for num_samples=3",
        False,
    ),
    ("seed dict", sample(seed={"a": 1}), sk.errors.InvalidArgumentError, "seed[0]='a'", False),
    ("dtype int", sample(dtype=torch.int32), sk.errors.InvalidArgumentError, "not a floating-point dtype", False),
    ("dtype string", sample(dtype="float64"), sk.errors.ArgumentTypeError, "torch floating-point dtype", False),
    (
        "x_T NaN",
        sample(x_T=nan_x),
        sk.errors.InvalidArgumentError,
        "x_T holds NaN/Inf (before any network call)",
        False,
    ),
    (
        "x_T vs num_samples",
        sample(x_T=torch.zeros(4, 2), num_samples=3),
        sk.errors.InvalidArgumentError,
        "num_samples=3 conflicts with x_T, which holds 4 samples",
        True,
    ),
    (
        "x_T vs dtype",
        sample(x_T=torch.zeros(3, 2), dtype=f64),
        sk.errors.InvalidArgumentError,
        "dtype=torch.float64 conflicts with x_T.dtype=torch.float32",
        True,
    ),
    ("x_T shape", sample(x_T=torch.zeros(3, 5)), SamplekitError, "x_T has shape (3, 5)", False),
    ("x_T integer", sample(x_T=torch.zeros(3, 2, dtype=torch.int64)), SamplekitError, "floating-point tensor", False),
    (
        "unknown solver",
        sample(solver="euler_maruyam"),
        sk.UnknownComponentError,
        "did you mean 'euler_maruyama'",
        False,
    ),
    ("solver not a name", sample(solver=3), SamplekitError, "must be a registered name", False),
    ("unknown option", sample(bogus=1), SamplekitError, "'bogus'", False),
    ("option type", sample(solver="ddim", eta="abc"), SamplekitError, "eta", False),
    ("option bool as text", sample(solver="ddim", denoise_final="False"), SamplekitError, "denoise_final", True),
    ("nfe below a solver's need", sample(nfe=1, denoise_final=True), sk.SolverError, "nfe=1 is too small", False),
    ("ts increasing", sample(ts=grid.flip(0)), SamplekitError, "decreasing", False),
    ("ts outside [t_min, T]", sample(ts=torch.tensor([2.0, 1.0, 0.5], dtype=f64)), SamplekitError, "ts", False),
    ("ts with an adaptive solver", sample(solver="ode_dopri5", ts=grid), sk.SolverError, "adaptive", False),
    ("t_start without x_start", sample(t_start=0.5), SamplekitError, "x_start", False),
    (
        "t_start outside (t_min, T]",
        sample(x_start=torch.zeros(3, 2), t_start=3.0),
        SamplekitError,
        "t_start=3.0",
        False,
    ),
    ("x_start NaN", sample(x_start=nan_x, t_start=0.5), sk.errors.InvalidArgumentError, "x_start holds NaN/Inf", False),
    (
        "x_start and x_T",
        sample(x_start=torch.zeros(3, 2), t_start=0.5, x_T=torch.zeros(3, 2)),
        SamplekitError,
        "x_T and x_start",
        False,
    ),
    (
        "model not a ScoreModel",
        lambda model: sk.sample(lambda x, t: x, nfe=5, progress=False),
        SamplekitError,
        "is not a ScoreModel",
        False,
    ),
    ("unknown SDE", lambda model: sk.get_sde("vpp"), sk.UnknownComponentError, "did you mean 'vp'", False),
    ("unknown SDE parameter", lambda model: sk.get_sde("vp", beta_mx=20.0), SamplekitError, "beta_mx", False),
    ("unknown kind", lambda model: sk.available("solvers"), SamplekitError, "kind='solvers'", False),
    (
        "score model shape",
        lambda model: sk.ScoreModel.from_eps(lambda x, t: x, sk.VPSDE(), shape=(0,)),
        SamplekitError,
        "shape=(0,)",
        False,
    ),
    (
        "parametrization",
        lambda model: sk.ScoreModel(lambda x, t: x, sk.VPSDE(), (2,), "noise"),
        SamplekitError,
        "parametrization='noise'",
        False,
    ),
    ("model t outside [t_min, T]", lambda model: model(torch.zeros(3, 2), 5.0), SamplekitError, "t", False),
    (
        "likelihood estimator",
        lambda model: sk.log_likelihood(model, torch.zeros(3, 2), estimator="hutch"),
        sk.UnknownComponentError,
        "available: exact, hutchinson_gaussian",
        False,
    ),
    (
        "likelihood n_probes",
        lambda model: sk.log_likelihood(model, torch.zeros(3, 2), n_probes=0),
        SamplekitError,
        "n_probes=0",
        False,
    ),
    (
        "likelihood points shape",
        lambda model: sk.log_likelihood(model, torch.zeros(3, 5)),
        SamplekitError,
        "shape (3, 5)",
        False,
    ),
    ("likelihood NaN points", lambda model: sk.log_likelihood(model, nan_x.double()), SamplekitError, "NaN", False),
]


@pytest.mark.parametrize("call, error, fragment, silent", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_bad_input_is_a_clear_samplekit_error_before_any_network_call(counted, call, error, fragment, silent):
    net, model = counted
    with pytest.raises(SamplekitError) as caught:
        call(model)
    assert isinstance(caught.value, error), (type(caught.value), caught.value)
    assert fragment in str(caught.value), str(caught.value)
    assert "Traceback" not in str(caught.value) and len(str(caught.value)) < 600
    assert net.calls == 0


# --- valid inputs that used to be refused, and side effects --------------------------------------
def test_numpy_integers_are_integers(counted):
    net, model = counted
    res = sk.sample(model, "euler_maruyama", nfe=np.int64(4), num_samples=np.int32(3), seed=np.int64(7), progress=False)
    same = sk.sample(model, "euler_maruyama", nfe=4, num_samples=3, seed=7, progress=False)
    assert torch.equal(res.samples, same.samples) and res.nfe == 4 and net.calls == 8
    per_sample = sk.sample(model, "euler_maruyama", nfe=4, num_samples=3, seed=np.arange(3), progress=False)
    listed = sk.sample(model, "euler_maruyama", nfe=4, num_samples=3, seed=[0, 1, 2], progress=False)
    assert torch.equal(per_sample.samples, listed.samples)


def test_seed_none_draws_a_fresh_seed_without_touching_torchs_global_generator(counted):
    _, model = counted
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    first = sk.sample(model, "euler_maruyama", nfe=3, num_samples=4, seed=None, progress=False)
    second = sk.sample(model, "euler_maruyama", nfe=3, num_samples=4, seed=None, progress=False)
    assert torch.equal(torch.get_rng_state(), before)
    assert not torch.equal(first.samples, second.samples)


def test_x_T_gives_num_samples_and_dtype_when_they_are_not_given(counted):
    _, model = counted
    x_T = torch.randn(5, 2, dtype=f64, generator=torch.Generator().manual_seed(0))
    res = sk.sample(model, "ode_euler", nfe=3, x_T=x_T, progress=False)
    agreeing = sk.sample(model, "ode_euler", nfe=3, x_T=x_T, num_samples=5, dtype=f64, progress=False)
    assert res.samples.shape == (5, 2) and res.samples.dtype == f64 and torch.equal(res.samples, agreeing.samples)
