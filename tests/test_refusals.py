"""Data safety and honest refusals (issue 28): a resumed ``--out DIR`` never mixes two runs, a damaged chunk is
drawn again, ``--out`` is resolved once and nothing is replaced without ``--force`` or written through a link;
then a table of requests over the API and the CLI that were tracebacks or quietly not honoured, each now a
clear ``SamplekitError`` (one line on the CLI) before any work, or honoured.  CLI rows run in-process
(click's CliRunner); "killed mid-run" is a run whose final merge raises after its chunks are on disk."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import samplekit as sk
from samplekit.atomic import atomic_write
from samplekit.chunks import ChunkDir
from samplekit.cli import cli
from samplekit.errors import OutputError
from samplekit.training.nets import TimeMLP

ROOT = Path(__file__).resolve().parents[1]
RING = ROOT / "plugins" / "samplekit_models" / "weights" / "ring2d_mlp"
BASE = "sample --solver ddim --nfe 4 -n 4 --batch-size 2 --seed 3"


class Killed(Exception):
    """Stands for kill -9 between the last chunk and the merge."""


def cli_run(args: str, mapping: dict[str, str] | None = None):
    for key, value in (mapping or {}).items():
        args = args.replace(key, value)
    return CliRunner().invoke(cli, args.split())


def one_line_error(result, fragment: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    assert fragment in result.output, result.output
    assert result.output.strip().count("\n") == 0, result.output


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("refusals")
    other = d / "ring_other"
    shutil.copytree(RING, other)
    from safetensors.torch import load_file, save_file

    weights = load_file(str(other / "model.safetensors"))
    name = sorted(weights)[0]
    weights[name] = weights[name] + 1e-3  # other weights, same architecture
    save_file(weights, str(other / "model.safetensors"))
    torch.manual_seed(0)
    torch.jit.script(TimeMLP(2, hidden=4, depth=1)).save(str(d / "net.ts"))
    np.save(d / "ts_a.npy", np.array([0.9, 0.5, 0.2, 0.05, 0.001]))
    np.save(d / "ts_b.npy", np.array([0.9, 0.6, 0.2, 0.05, 0.001]))
    np.save(d / "init_a.npy", np.zeros(2))
    np.save(d / "init_b.npy", np.ones(2))
    return {"{d}": str(d), "{ring}": str(RING), "{ring_other}": str(other)}


def killed_run(args: str, out: Path, mapping, monkeypatch) -> None:
    """``args --out out`` until every chunk is on disk; the merge never happens."""

    def merge(*a, **k):
        raise Killed

    with monkeypatch.context() as m:
        m.setattr(ChunkDir, "merge", merge)
        result = cli_run(f"{args} --out {out}", mapping)
    assert isinstance(result.exception, Killed), (result.output, result.exception)
    assert len(list((out / "chunks").glob("0*.npz"))) == 2


TS_MODEL = "--model {d}/net.ts --loader torch --shape 2 --trust-code"
# (id, the killed run's arguments, the rerun's, the difference the refusal must name)
RESUMES = [
    ("sde", f"{BASE} --target ring2d", f"{BASE} --target ring2d --sde subvp", "sde"),
    ("solver option", BASE, f"{BASE} --option eta=0.5", "solver options"),
    ("seed", BASE, BASE.replace("--seed 3", "--seed 4"), "seed"),
    ("per-sample seeds", BASE, f"{BASE} --per-sample-seeds", "seed"),
    ("model weights", f"{BASE} --model {{ring}}", f"{BASE} --model {{ring_other}}", "model weights"),
    (
        "parametrization",
        f"{BASE} {TS_MODEL} --parametrization eps",
        f"{BASE} {TS_MODEL} --parametrization x0",
        "parametrization",
    ),
    ("grid", f"{BASE} --ts {{d}}/ts_a.npy", f"{BASE} --ts {{d}}/ts_b.npy", "grid (--ts)"),
    (
        "init",
        f"{BASE} --init {{d}}/init_a.npy --strength 0.5",
        f"{BASE} --init {{d}}/init_b.npy --strength 0.5",
        "init (--init)",
    ),
    (
        "strength",
        f"{BASE} --init {{d}}/init_a.npy --strength 0.5",
        f"{BASE} --init {{d}}/init_a.npy --strength 0.6",
        "t_start (--strength)",
    ),
]


@pytest.mark.parametrize("first, second, named", [r[1:] for r in RESUMES], ids=[r[0] for r in RESUMES])
def test_a_rerun_that_differs_is_refused_naming_the_difference(tmp_path, files, monkeypatch, first, second, named):
    out = tmp_path / "run"
    killed_run(first, out, files, monkeypatch)
    before = sorted((p.name, p.read_bytes()) for p in (out / "chunks").iterdir())
    result = cli_run(f"{second} --out {out}", files)
    one_line_error(result, "holds the chunks of another run")
    assert named in result.output.split("differs in")[1], result.output
    assert not (out / "samples.npz").exists()
    assert sorted((p.name, p.read_bytes()) for p in (out / "chunks").iterdir()) == before  # untouched


def test_a_class_conditional_rerun_with_another_class_is_refused(tmp_path, monkeypatch):
    """The probe's case: a set labelled class 7 must not take class-3 chunks."""
    args = "sample --model digits_unet --solver ddim --nfe 2 -n 2 --batch-size 1"
    out = tmp_path / "digits"

    def merge(*a, **k):
        raise Killed

    with monkeypatch.context() as m:
        m.setattr(ChunkDir, "merge", merge)
        assert isinstance(cli_run(f"{args} --class 3 --out {out}").exception, Killed)
    result = cli_run(f"{args} --class 7 --out {out}")
    one_line_error(result, "holds the chunks of another run")
    assert "class_label" in result.output and "model, conditioning and guidance" in result.output


def test_the_same_run_resumes_and_a_damaged_chunk_is_drawn_again(tmp_path, files, monkeypatch):
    fresh = tmp_path / "fresh"
    assert cli_run(f"{BASE} --out {fresh}").exit_code == 0
    want = np.load(fresh / "samples.npz")["samples"]
    out = tmp_path / "run"
    killed_run(BASE, out, files, monkeypatch)
    first = sorted((out / "chunks").glob("0*.npz"))[0]
    first.write_bytes(first.read_bytes()[:40])  # truncated, as a full disk or a crash mid-copy leaves it
    result = cli_run(f"{BASE} --out {out}")
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.load(out / "samples.npz")["samples"], want)


def test_out_with_a_trailing_slash_writes_inside_that_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.savez("samples.npz", samples=np.full((1, 2), 7.0))
    keep = Path("samples.npz").read_bytes()
    result = cli_run(f"{BASE} --out new.npz/")
    assert result.exit_code == 0, result.output
    assert np.load("new.npz/samples.npz")["samples"].shape == (4, 2)
    assert Path("samples.npz").read_bytes() == keep  # never elsewhere
    one_line_error(cli_run(f"{BASE} --out new.npz/"), "exists; pass --force")  # and not replaced


def test_an_empty_out_is_refused_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, [*BASE.split(), "--out", ""])
    one_line_error(result, "--out is empty")
    assert list(tmp_path.iterdir()) == []


def test_a_300_character_out_is_one_line(tmp_path):
    one_line_error(cli_run(f"{BASE} --out {tmp_path}/{'a' * 300}.npz"), "File name too long")


def test_a_symlinked_chunks_dir_is_refused_and_its_target_untouched(tmp_path):
    out, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "chunks").symlink_to(elsewhere)
    for extra in ("", " --force"):
        one_line_error(cli_run(f"{BASE} --out {out}{extra}"), "is a symbolic link")
    assert list(elsewhere.iterdir()) == []


def test_atomic_write_never_replaces_without_replace_and_never_follows_a_link(tmp_path, monkeypatch):
    target, victim = tmp_path / "out.npz", tmp_path / "victim"
    victim.write_bytes(b"precious")
    target.symlink_to(victim)
    with pytest.raises(OutputError, match="pass --force"):
        atomic_write(target, lambda f: f.write(b"new"))
    atomic_write(target, lambda f: f.write(b"new"), replace=True)  # replaces the link itself
    assert victim.read_bytes() == b"precious" and not target.is_symlink() and target.read_bytes() == b"new"
    # a link planted at the temporary name (were it predictable) makes the open fail, writing nothing
    monkeypatch.setattr("secrets.token_hex", lambda n: "fixed")
    (tmp_path / ".other.npz.fixed.tmp").symlink_to(victim)
    with pytest.raises(OutputError, match="fresh temporary file"):
        atomic_write(tmp_path / "other.npz", lambda f: f.write(b"evil"))
    assert victim.read_bytes() == b"precious" and not (tmp_path / "other.npz").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.npz.fixed.tmp", "out.npz", "victim"]


def test_temporary_names_are_unpredictable(tmp_path, monkeypatch):
    seen = []
    real_open = os.open

    def spy(path, flags, mode=0o777):
        seen.append((os.path.basename(path), flags))
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", spy)
    for _ in range(2):
        atomic_write(tmp_path / f"f{len(seen)}.bin", lambda f: f.write(b"x"))
    (a, flags), (b, _) = seen
    assert a.split(".")[3] != b.split(".")[3] and len(a.split(".")[3]) == 16
    assert flags & os.O_EXCL and flags & os.O_NOFOLLOW and flags & os.O_CREAT


# --- the table: API requests that were tracebacks or quietly not honoured --------------------------------------


class Counting:
    """The exact eps of the ring under VP, counting its own calls (the raw network)."""

    def __init__(self) -> None:
        from samplekit.targets import ring2d

        self.exact = ring2d().score_model(sk.VPSDE())
        self.calls = 0

    def __call__(self, x, t):
        self.calls += 1
        return self.exact.eps(x, t)


class Labelled(torch.nn.Module):
    """eps(x, t, class_labels) with a 10-row class embedding (as diffusers' UNet2DModel names it)."""

    def __init__(self) -> None:
        super().__init__()
        self.class_embedding = torch.nn.Embedding(10, 2)
        self.calls = 0

    def forward(self, x, t, class_labels):
        self.calls += 1
        return 0.1 * x + 0 * self.class_embedding(class_labels)


def _sample(**kwargs):
    return lambda model: sk.sample(
        model, **({"solver": "euler_maruyama", "nfe": 5, "num_samples": 3, "progress": False} | kwargs)
    )


def _labelled(labels):
    def call(_model):
        net = Labelled()
        model = sk.ScoreModel.from_eps(net, sk.VPSDE(), (2,))
        try:
            return sk.sample(model.condition(class_labels=labels), "ddim", nfe=4, num_samples=3, progress=False)
        finally:
            assert net.calls == 0

    return call


GRID = torch.tensor([1.0, 0.5, 0.1, 1e-3], dtype=torch.float64)
E = sk.errors
API = [
    ("nfe 10**12 sized first", _sample(nfe=10**12), E.ResourceLimitError, "grid of 1,000,000,000,000 steps"),
    ("num_samples 1e13 sized first", _sample(num_samples=10**13), E.ResourceLimitError, "GiB on cpu"),
    ("unknown schedule_options key", _sample(solver="ddim", schedule_options={"bogus": 1}), sk.SolverError, "'bogus'"),
    ("device cuda on a CPU build", _sample(device="cuda"), E.InvalidArgumentError, "no usable CUDA device"),
    ("device bogus", _sample(device="bogus"), E.InvalidArgumentError, "is not a torch device"),
    ("device meta", _sample(device="meta"), E.InvalidArgumentError, "holds no data"),
    ("callback 5", _sample(callback=5), E.ArgumentTypeError, "callback=5 is not callable"),
    (
        "ts with schedule",
        _sample(solver="ddim", ts=GRID, schedule="karras"),
        E.InvalidArgumentError,
        "ts= and schedule=",
    ),
    (
        "log_likelihood fixed-step euler",
        lambda m: sk.log_likelihood(m, torch.zeros(4, 2), method="euler"),
        E.InvalidArgumentError,
        "fixed-step torchdiffeq method",
    ),
    (
        "log_likelihood seed 0.5",
        lambda m: sk.log_likelihood(m, torch.zeros(4, 2), seed=0.5),
        E.InvalidArgumentError,
        "seed=0.5 must be an integer",
    ),
    ("load_model(5)", lambda m: sk.load_model(5), E.InvalidArgumentError, "pass loader="),
    ("optimize_schedule nfe '5'", lambda m: sk.optimize_schedule(m, "ddim", "5"), E.InvalidArgumentError, "nfe='5'"),
    (
        "optimize_schedule max_nfe=1",
        lambda m: sk.optimize_schedule(m, "ddim", 5, max_nfe=1),
        E.InvalidArgumentError,
        "max_nfe=1 cannot pay",
    ),
    (
        "optimize_schedule starts misspelt",
        lambda m: sk.optimize_schedule(m, "ddim", 5, starts=("karas",)),
        E.UnknownComponentError,
        "karras",
    ),
    ("shape '22'", lambda m: sk.ScoreModel.from_eps(m.net, m.sde, "22"), E.ArgumentTypeError, "shape='22'"),
    ("shape (2.5,)", lambda m: sk.ScoreModel.from_eps(m.net, m.sde, (2.5,)), E.ArgumentTypeError, "integer sizes"),
    ("class_labels out of range", _labelled(torch.tensor([12])), E.InvalidArgumentError, "outside the 10 rows"),
    ("class_labels negative", _labelled(torch.tensor([-1])), E.InvalidArgumentError, "outside the 10 rows"),
    ("class_labels floats", _labelled(torch.tensor([1.5])), E.ArgumentTypeError, "class labels are integers"),
]


@pytest.mark.parametrize("call, error, fragment", [r[1:] for r in API], ids=[r[0] for r in API])
def test_api_request_is_refused_clearly_before_any_network_call(call, error, fragment):
    net = Counting()
    model = sk.ScoreModel.from_eps(net, sk.VPSDE(), (2,))
    with pytest.raises(error) as info:
        call(model)
    assert fragment in str(info.value), str(info.value)
    assert "\n" not in str(info.value)
    assert net.calls == 0


def test_cfg_interval_outside_the_time_range_is_refused():
    net = Labelled()
    model = sk.ScoreModel.from_eps(net, sk.VPSDE(), (2,))
    cond, uncond = model.condition(class_labels=torch.tensor([1])), model.condition(class_labels=torch.tensor([9]))
    with pytest.raises(sk.errors.InvalidArgumentError, match="lies outside \\[t_min, T\\].*never act"):
        sk.guidance.classifier_free(cond, uncond, 2.0, interval=(5, 10))
    sk.guidance.classifier_free(cond, uncond, 2.0, interval=(0.0, 0.5))  # partly below t_min: fine


def test_class_labels_as_an_ndarray_are_honoured():
    net = Labelled()
    model = sk.ScoreModel.from_eps(net, sk.VPSDE(), (2,))
    a = sk.sample(
        model.condition(class_labels=np.array([1, 2, 3])), "ddim", nfe=4, num_samples=3, seed=0, progress=False
    )
    b = sk.sample(
        model.condition(class_labels=torch.tensor([1, 2, 3])), "ddim", nfe=4, num_samples=3, seed=0, progress=False
    )
    assert torch.equal(a.samples, b.samples)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_a_float32_network_takes_samples_of_another_dtype_in_its_own(dtype):
    """Honoured: the network runs in its weights' dtype, the samples stay in theirs; the same numbers as
    casting by hand (float64 samples: up to float32 rounding of the network's input)."""
    torch.manual_seed(0)
    net = TimeMLP(2, hidden=8, depth=1)
    model = sk.ScoreModel.from_eps(net, sk.VPSDE(), (2,))
    res = sk.sample(model, "ddim", nfe=6, num_samples=4, seed=0, dtype=dtype, progress=False)
    assert res.samples.dtype == dtype and bool(torch.isfinite(res.samples).all())
    by_hand = sk.ScoreModel.from_eps(lambda x, t: net(x.float(), t.float()).to(x.dtype), sk.VPSDE(), (2,))
    want = sk.sample(by_hand, "ddim", nfe=6, num_samples=4, seed=0, dtype=dtype, progress=False)
    assert torch.equal(res.samples, want.samples)


def test_bfloat16_dopri5_does_not_report_a_time_it_rounded():
    """bfloat16 rounds 0.9998 to 1.0078 > T: that rounding is not reported as the user's t out of range."""
    from samplekit.targets import ring2d

    model = ring2d().score_model(sk.VPSDE())
    x = torch.randn(3, 2).to(torch.bfloat16)
    with pytest.raises(sk.SolverError, match="would exceed max_nfe=60") as info:
        sk.sample(model, "ode_dopri5", nfe=60, x_T=x, progress=False)
    assert "outside" not in str(info.value)


def test_a_raising_torchscript_network_is_one_line_naming_it():
    class Boom(torch.nn.Module):
        def forward(self, x, t):
            if bool((t < 0.5).any()):
                raise RuntimeError("boom below t = 0.5")
            return x

    model = sk.ScoreModel.from_eps(torch.jit.script(Boom()), sk.VPSDE(), (2,), name="boom")
    with pytest.raises(sk.errors.NetworkError, match="network 'boom' \\(TorchScript\\) raised: .*boom below t = 0.5"):
        sk.sample(model, "ddim", nfe=6, num_samples=3, progress=False)


# --- the table: command lines (one line, exit status 2, nothing written) ----------------------------------------


def _bad_config(d: Path) -> str:
    import json

    bad = d / "bad_shape"
    if not bad.exists():
        shutil.copytree(RING, bad)
        config = json.loads((bad / "samplekit.json").read_text())
        config["shape"] = [3]
        (bad / "samplekit.json").write_text(json.dumps(config))
    return str(bad)


CLI = [
    ("-n 1e13 sized first", "sample -n 10000000000000 --out {d}/c1.npz", "GiB on cpu", "c1.npz"),
    ("--nfe 10**12 sized first", "sample --nfe 1000000000000 --out {d}/c2.npz", "steps (more than", "c2.npz"),
    ("--target with --model", "sample --target gmm8 --model ring2d_mlp --out {d}/c3.npz", "were both given", "c3.npz"),
    ("native shape not fitting", "sample --model {bad} --out {d}/c4.npz", "shape [3] does not fit", "c4.npz"),
    (
        "--shape 2,x",
        "sample " + TS_MODEL.replace("--shape 2", "--shape 2,x") + " --out {d}/c5.npz",
        "is not a shape",
        "c5.npz",
    ),
    (
        "--shape 3,,32",
        "sample " + TS_MODEL.replace("--shape 2", "--shape 3,,32") + " --out {d}/c6.npz",
        "is not a shape",
        "c6.npz",
    ),
    ("likelihood --sde on a trained net", "likelihood --target ring2d_mlp --sde ve -n 3", "trained on SDE 'vp'", None),
    (
        "train garbage checkpoint",
        "train --data ring2d --out {d}/t1 --steps 3 --checkpoint {d}/garbage.st --resume --no-progress",
        "not a valid safetensors file",
        "t1/samplekit.json",
    ),
]


@pytest.mark.parametrize("args, fragment, unwritten", [r[1:] for r in CLI], ids=[r[0] for r in CLI])
def test_bad_command_line_is_one_line_and_writes_nothing(tmp_path, files, args, fragment, unwritten):
    (tmp_path / "garbage.st").write_bytes(b"garbage" * 10)
    mapping = {**files, "{d}": str(tmp_path), "{bad}": _bad_config(tmp_path)}
    one_line_error(cli_run(args, mapping), fragment)
    if unwritten is not None:
        assert not (tmp_path / unwritten).exists()


def test_likelihood_of_a_float32_shipped_network_runs():
    """Points are float64, the shipped MLP float32: the network takes them in its dtype (was a raw torch error)."""
    result = cli_run("likelihood --target ring2d_mlp -n 3 --rtol 1e-3 --atol 1e-3")
    assert result.exit_code == 0 and "bits/dim" in result.output, result.output


def test_train_resume_refuses_another_sde_or_network_and_counts_steps(tmp_path):
    ck, out = tmp_path / "c.st", tmp_path / "m"
    base = f"train --data ring2d --num-data 256 --out {out} --hidden 8 --checkpoint {ck} --no-progress"
    assert cli_run(f"{base} --steps 4").exit_code == 0
    one_line_error(cli_run(f"{base} --steps 8 --resume --sde ve"), "trained with another sde")
    one_line_error(cli_run(f"{base.replace('--hidden 8', '--hidden 16')} --steps 8 --resume"), "another network")
    result = CliRunner().invoke(cli, [*base.split(), "--steps", "2", "--resume"])
    assert result.exit_code == 2 and "nothing to train" in result.output, result.output
    result = cli_run(f"{base} --steps 8 --resume")
    assert result.exit_code == 0 and "for 4 steps (from step 4 to 8)" in result.output, result.output
