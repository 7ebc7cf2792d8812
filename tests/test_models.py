"""Shipped models (through their loaders), the digit metrics, every solver on a diffusers UNet, the CLI,
and the benchmark's per-target settings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import samplekit as sk
from samplekit.bench.metrics import sliced_wasserstein
from samplekit.bench.suite import SuiteError, suite_from_dict
from samplekit.plugins import get_registry
from samplekit.solver import SolverError
from samplekit.targets import ring2d

diffusers = pytest.importorskip("diffusers")
pytest.importorskip("sklearn")
import diffusers_tiny as tiny  # noqa: E402  (tests/ is on sys.path under pytest)
from samplekit_models import classifier  # noqa: E402
from samplekit_models import targets as shipped  # noqa: E402
from samplekit_models.digits import load_digits_split  # noqa: E402

f64 = dict(dtype=torch.float64)


def test_the_shipped_ring2d_mlp_loads_through_the_native_loader_and_samples_ring2d():
    model = sk.load_model(shipped.RING2D_DIR, loader="samplekit")
    assert model.shape == (2,) and model.sde.name == "vp" and model.parametrization == "eps"
    ref = ring2d().sample(2000, generator=torch.Generator().manual_seed(1))
    got = sliced_wasserstein(
        sk.sample(model, "euler_maruyama", nfe=50, num_samples=2000, seed=0, progress=False).samples, ref
    )
    prior = sliced_wasserstein(torch.randn(2000, 2, generator=torch.Generator().manual_seed(0)), ref)
    # measured: 0.24 (two exact sets of 2000: 0.28; the exact score with the same solver ~0.3); N(0, I) ~1.5
    assert got < 0.45 < prior


@pytest.fixture(scope="module")
def digits_model():
    return sk.load_model(shipped.DIGITS_DIR, loader="diffusers")


def test_the_shipped_digits_unet_loads_through_the_diffusers_loader_and_draws_digits(digits_model):
    model = digits_model
    assert model.shape == (1, 8, 8) and isinstance(model.sde, sk.DiscreteVPSDE) and model.parametrization == "eps"
    res = sk.sample(model, "euler_maruyama", nfe=20, num_samples=300, seed=0, progress=False, schedule="discrete")
    x_test = load_digits_split()[2]
    fd = classifier.digits_fd(res.samples, x_test[:300])
    tv = classifier.digits_class_balance(res.samples, x_test[:300])
    noise_fd = classifier.digits_fd(
        torch.rand(300, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1, x_test[:300]
    )
    # bounds well above what the shipped model gives (see benchmarks/digits) and far below noise
    assert fd < 0.25 * noise_fd and tv < 0.25, (fd, tv, noise_fd)


def test_the_shipped_classifier_reads_held_out_digits():
    _, _, x_test, y_test = load_digits_split()
    accuracy = float((classifier.classify(x_test) == y_test).double().mean())
    assert accuracy > 0.95


def test_frechet_distance_matches_its_closed_form_on_gaussians():
    # N(m, I) vs N(0, 4 I) in d dims: |m|^2 + tr(I + 4 I - 2 (4 I)^(1/2)) = |m|^2 + d
    d, n = 4, 200_000
    g = torch.Generator().manual_seed(0)
    m = torch.tensor([1.0, -0.5, 0.0, 2.0], **f64)
    fx = m + torch.randn(n, d, generator=g, **f64)
    fy = 2 * torch.randn(n, d, generator=g, **f64)
    assert classifier.frechet_distance(fx, fy) == pytest.approx(float(m @ m) + d, rel=0.02)
    assert classifier.frechet_distance(fx, fx) == pytest.approx(0.0, abs=1e-6)


def test_class_balance_is_the_total_variation_of_predicted_class_frequencies():
    _, _, x_test, y_test = load_digits_split()
    ones = x_test[y_test == 1]
    predicted = classifier.classify(ones)
    share = float((predicted == 1).double().mean())
    ref_freq = torch.bincount(classifier.classify(x_test), minlength=10).double() / x_test.shape[0]
    # samples that are all "1"s (as classified): TV = 1 - share of class 1 in the reference, exactly
    expected = 0.5 * float((torch.bincount(predicted, minlength=10).double() / ones.shape[0] - ref_freq).abs().sum())
    assert classifier.digits_class_balance(ones, x_test) == pytest.approx(expected, abs=1e-12)
    assert share > 0.9 and expected > 0.8
    assert classifier.digits_class_balance(x_test, x_test) == 0.0


def test_digit_metrics_give_no_value_on_other_targets_in_the_benchmark():
    from samplekit.bench.runner import BenchContext

    registry = get_registry()
    ctx = BenchContext(
        registry, {"ring2d": registry.create("target", "ring2d")}, ["sliced_w2", "digits_fd", "digits_class_balance"]
    )
    x = ring2d().sample(100)
    values, errors, _ = ctx.score("ring2d", x, x + 0.1)
    assert values["digits_fd"] is None and values["digits_class_balance"] is None and not errors
    assert values["sliced_w2"] > 0


# --- every registered solver on a diffusers UNet saved with save_pretrained ------------------------
@pytest.fixture(scope="module")
def tiny_unet_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("unet")
    tiny.unet2d(seed=0).save_pretrained(path)
    diffusers.DDPMScheduler(num_train_timesteps=1000).save_pretrained(path)
    return path


SOLVERS = [c.name for c in sk.available("solver")]


def _adaptive(name: str) -> bool:
    info = get_registry().get("solver", name)
    return bool(info.info.get("adaptive", getattr(info.factory, "adaptive", False)))


@pytest.mark.parametrize("name", SOLVERS)
def test_a_saved_unet_loads_and_samples_with_every_registered_solver(tiny_unet_dir, name):
    model = sk.load_model(tiny_unet_dir)
    adaptive = _adaptive(name)
    budget, options = (300, {"rtol": 1e-2, "atol": 1e-2}) if adaptive else (20, {"schedule": "discrete"})
    seen = []
    model.net.module.register_forward_pre_hook(lambda module, args: seen.append(args[1].detach().clone()))
    try:
        res = sk.sample(model, name, nfe=budget, num_samples=3, seed=0, progress=False, **options)
    except SolverError as exc:  # a solver that cannot integrate this SDE must say so, naming it
        assert "DiscreteVPSDE" in str(exc) or "discrete" in str(exc), exc
        return
    assert res.samples.shape == (3, 1, 8, 8) and torch.isfinite(res.samples).all()
    assert 0 < res.nfe == model.nfe == len(seen) and (adaptive or res.nfe <= budget)
    info = get_registry().get("solver", name)
    if not adaptive and info.info.get("nfe_per_step", getattr(info.factory, "nfe_per_step", 1)) == 1:
        steps = torch.cat(seen).double()  # one call per step on the discrete grid: training timesteps
        assert torch.equal(steps, steps.round()) and float(steps.min()) >= 0 and float(steps.max()) <= 999


# --- the CLI ---------------------------------------------------------------------------------------
def test_sample_model_writes_a_png_grid_of_digits_and_an_npz(tmp_path):
    from samplekit.cli import cli

    out = tmp_path / "digits.npz"
    result = CliRunner().invoke(
        cli,
        [
            "sample",
            "--model",
            str(shipped.DIGITS_DIR),
            "--nfe",
            "10",
            "-n",
            "16",
            "--option",
            "schedule=discrete",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    samples = np.load(out)["samples"]
    assert samples.shape == (16, 1, 8, 8) and np.isfinite(samples).all()
    png = out.with_suffix(".png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    w, h = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (w, h) == (4 * (8 * 4 + 1) + 1,) * 2  # 4 x 4 digits, 4x enlarged, 1 px gaps
    named = CliRunner().invoke(
        cli, ["sample", "--model", "ring2d_mlp", "--nfe", "5", "-n", "8", "--out", str(tmp_path / "r.npz")]
    )
    assert named.exit_code == 0 and np.load(tmp_path / "r.npz")["samples"].shape == (8, 2)
    bad = CliRunner().invoke(cli, ["sample", "--model", "no_such_model", "--out", str(tmp_path / "x.npz")])
    assert bad.exit_code != 0 and "neither a path" in bad.output


def test_train_cli_trains_checkpoints_resumes_and_writes_a_loadable_model(tmp_path):
    from samplekit.cli import cli

    data = ring2d().sample(500, generator=torch.Generator().manual_seed(0)).numpy()
    np.savez(tmp_path / "d.npz", samples=data)
    args = [
        "train",
        "--data",
        str(tmp_path / "d.npz"),
        "--out",
        str(tmp_path / "m"),
        "--hidden",
        "16",
        "--depth",
        "1",
        "--batch-size",
        "32",
        "--checkpoint",
        str(tmp_path / "c.safetensors"),
        "--no-progress",
    ]
    first = CliRunner().invoke(cli, args + ["--steps", "20"])
    assert first.exit_code == 0, first.output
    second = CliRunner().invoke(cli, args + ["--steps", "30", "--resume", "--loss", "ssm"])
    assert second.exit_code == 0 and "resumed from" in second.output, second.output
    assert "for 10 steps (from step 20 to 30)" in second.output, second.output  # --steps is the total
    model = sk.load_model(tmp_path / "m")
    assert model.shape == (2,) and torch.isfinite(model(torch.zeros(4, 2), 0.5)).all()
    bad = CliRunner().invoke(
        cli, ["train", "--data", str(tmp_path / "d.npz"), "--out", str(tmp_path / "n"), "--resume"]
    )
    assert bad.exit_code != 0 and "--checkpoint" in bad.output


# --- per-target settings of a suite ---------------------------------------------------------------
def test_target_overrides_replace_the_suite_settings_for_that_target_only():
    from samplekit.bench.grid import Cell, FloorCell, build_cells

    data = {
        "name": "s",
        "targets": ["ring2d", "gmm16_full"],
        "solvers": ["euler_maruyama"],
        "nfe": [5, 10, 20],
        "seeds": [0, 1],
        "num_samples": 100,
        "target_overrides": {"gmm16_full": {"nfe": [10], "seeds": [3], "num_samples": 50}},
    }
    suite = suite_from_dict(data)
    registry = get_registry()
    targets = {t: registry.create("target", t) for t in suite.targets}
    cells = build_cells(suite, registry, targets)
    ring = [c for c in cells if isinstance(c, Cell) and c.target == "ring2d"]
    gmm = [c for c in cells if isinstance(c, Cell) and c.target == "gmm16_full"]
    assert sorted((c.nfe, c.seed, c.num_samples) for c in ring) == sorted(
        (n, s, 100) for n in (5, 10, 20) for s in (0, 1)
    )
    assert [(c.nfe, c.seed, c.num_samples) for c in gmm] == [(10, 3, 50)]
    assert {(c.target, c.seed, c.num_samples) for c in cells if isinstance(c, FloorCell)} == {
        ("ring2d", 0, 100),
        ("ring2d", 1, 100),
        ("gmm16_full", 3, 50),
    }
    assert suite.replace(nfe=(5,)).for_target("gmm16_full").nfe == (5,)  # the command line wins
    assert suite.replace(nfe=(5,)).for_target("gmm16_full").seeds == (3,)
    for bad, match in (
        ({"ring2d": {"colour": 1}}, "keys among"),
        ({"ring2d": {"nfe": [0]}}, "nfe"),
    ):
        with pytest.raises(SuiteError, match=match):
            suite_from_dict({**data, "target_overrides": bad})
    # an override of a target the run does not select (`--targets ring2d` on the default suite) is ignored
    unselected = suite_from_dict({**data, "target_overrides": {"digits_unet": {"nfe": [5]}}})
    assert {c.target for c in build_cells(unselected, registry, targets) if isinstance(c, Cell)} == {
        "ring2d",
        "gmm16_full",
    }


def test_the_default_suite_runs_the_shipped_models_with_cheap_digit_cells():
    from samplekit.bench.suite import PACKAGED_DEFAULT, load_suite

    suite = load_suite(PACKAGED_DEFAULT)
    assert {"ring2d_mlp", "digits_unet"} <= set(suite.targets)
    assert {"digits_fd", "digits_class_balance"} <= set(suite.metrics)
    assert {"digits_cfg", "digits_flow"} <= set(suite.targets)
    # CFG counts 2 NFE per evaluation (one batched call on 2B rows): its budgets are twice the others'
    for name, evaluations in (("digits_unet", 1), ("digits_cfg", 2), ("digits_flow", 1)):
        digits = suite.for_target(name)
        assert digits.num_samples <= 300 and len(digits.seeds) == 1 and max(digits.nfe) <= 20 * evaluations, name
        assert math.isfinite(digits.max_nfe) and digits.max_nfe <= 100 * evaluations, name
    # digits_cfg binds one class label per sample: its cells draw exactly that many samples
    assert suite.for_target("digits_cfg").num_samples == shipped.DigitsCFGTarget.num_samples
