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
