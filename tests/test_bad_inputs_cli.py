"""Bad command lines (issue 14): every command with its bad inputs, each row the arguments, a fragment of
the one-line error and, where the command writes a file, the output that must not appear.  Every row
runs in-process with click's CliRunner (exit status 2, no traceback, nothing written); then all rows run
again in one separate Python process through the console-script entry point (real stderr), and a few
through ``python -m samplekit`` itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from samplekit.cli import cli
from samplekit.training.nets import TimeMLP

RING = Path(__file__).resolve().parents[1] / "plugins" / "samplekit_models" / "weights" / "ring2d_mlp"
HUGE = ["-n", "10000000", "--nfe", "10000"]  # a row that sampled before failing would not finish


def make_files(d: Path) -> dict[str, str]:
    """The inputs the rows refer to, as {placeholder: path}."""
    d.mkdir(parents=True, exist_ok=True)
    np.savez(d / "existing.npz", samples=np.zeros((3, 2)))
    (d / "text.npy").write_text("1 2\n3 4\n")
    np.save(d / "wide.npy", np.zeros((3, 5)))
    np.save(d / "flat.npy", np.zeros(5))
    np.save(d / "nan.npy", np.full((4, 2), np.nan))
    np.save(d / "up.npy", np.array([0.001, 0.5, 1.0]))
    np.save(d / "one.npy", np.zeros(2))
    np.savez(d / "two.npz", a=np.zeros((3, 2)), b=np.ones((3, 2)))
    np.save(d / "mask.npy", np.ones(2))
    torch.jit.script(TimeMLP(2, hidden=4, depth=1)).save(str(d / "net.ts"))
    bomb = d / "bomb"
    shutil.copytree(RING, bomb)
    config = json.loads((bomb / "samplekit.json").read_text())
    config["architecture"]["options"]["hidden"] = 200000
    (bomb / "samplekit.json").write_text(json.dumps(config))
    corrupt = d / "corrupt"
    shutil.copytree(RING, corrupt)
    (corrupt / "model.safetensors").write_bytes(b"\x00garbage" * 8)
    model_dir = d / "trained"
    shutil.copytree(RING, model_dir)
    (d / "a_file").write_text("x")
    return {"{d}": str(d), "{ring}": str(RING)}


# (id, arguments with {d} for the files' directory, message fragment, output that must not be written);
# the exit status is 2 (a usage error), except bench's own failure status 1 for a run it cannot start
ROWS = [
    ("list: unknown kind", "list solvers", "'solvers' is not one of 'solver'", None),
    (
        "sample: unknown solver",
        "sample --solver euler_maruyam --out {d}/o1.npz",
        "did you mean 'euler_maruyama'",
        "o1.npz",
    ),
    (
        "sample: missing output directory",
        "sample {huge} --out {d}/missing_dir/a.npz",
        "the directory '{d}/missing_dir' does not exist",
        None,
    ),
    ("sample: output suffix", "sample {huge} --out {d}/keep.txt", "this file is written as .npz", "keep.txt.npz"),
    ("sample: existing output", "sample {huge} --out {d}/existing.npz", "exists; pass --force to overwrite", None),
    ("sample: output is a file's child", "sample {huge} --out {d}/a_file/x.npz", "is not a directory", None),
    ("sample: bool option", "sample --option denoise_final=maybe --out {d}/o2.npz", "denoise_final", "o2.npz"),
    ("sample: option without =", "sample --option eta --out {d}/o3.npz", "is not KEY=VALUE", "o3.npz"),
    ("sample: unknown option", "sample --option bogus=1 --out {d}/o4.npz", "'bogus'", "o4.npz"),
    ("sample: float option as text", "sample --solver ddim --option eta=abc --out {d}/o5.npz", "eta", "o5.npz"),
    ("sample: nfe 0", "sample --nfe 0 --out {d}/o6.npz", "nfe=0 must be a positive integer", "o6.npz"),
    ("sample: negative seed", "sample --seed -1 --out {d}/o7.npz", "Invalid value for '--seed'", "o7.npz"),
    ("sample: zero samples", "sample -n 0 --out {d}/o8.npz", "Invalid value for '-n'", "o8.npz"),
    ("sample: batch size 0", "sample --batch-size 0 --out {d}/o9.npz", "Invalid value for '--batch-size'", "o9.npz"),
    ("sample: unknown target", "sample --target ring3d --out {d}/o10.npz", "unknown target 'ring3d'", "o10.npz"),
    ("sample: unknown sde", "sample --sde vpp --out {d}/o11.npz", "unknown sde 'vpp'", "o11.npz"),
    (
        "sample: shipped model under another SDE",
        "sample --model ring2d_mlp --sde ve --out {d}/o12.npz",
        "--sde ve conflicts with model 'ring2d_mlp'",
        "o12.npz",
    ),
    ("sample: unknown model name", "sample --model no_such_model --out {d}/o13.npz", "neither a path", "o13.npz"),
    (
        "sample: unknown loader",
        "sample --model {ring} --loader samplekitt --out {d}/o14.npz",
        "did you mean 'samplekit'",
        "o14.npz",
    ),
    (
        "sample: flag a loader does not take",
        "sample --model {ring} --parametrization eps --out {d}/o15.npz",
        "--parametrization does not apply to loader 'samplekit'",
        "o15.npz",
    ),
    (
        "sample: loader flag without --model",
        "sample --shape 2 --out {d}/o16.npz",
        "--shape applies to --model",
        "o16.npz",
    ),
    (
        "sample: malformed shape",
        "sample --model {d}/net.ts --loader torch --shape a,b --out {d}/o17.npz",
        "is not a shape",
        "o17.npz",
    ),
    (
        "sample: torch loader without parametrization",
        "sample --model {d}/net.ts --loader torch --shape 2 --trust-code --out {d}/o18.npz",
        "needs parametrization=",
        "o18.npz",
    ),
    (
        "sample: TorchScript without --trust-code",
        "sample --model {d}/net.ts --loader torch --parametrization eps --shape 2 --out {d}/o19.npz",
        "--trust-code",
        "o19.npz",
    ),
    (
        "sample: torch loader on a directory",
        "sample --model {ring} --loader torch --parametrization eps --shape 2 --out {d}/o20.npz",
        "does not exist",
        "o20.npz",
    ),
    ("sample: resource bomb", "sample --model {d}/bomb --out {d}/o21.npz", "above max_params", "o21.npz"),
    (
        "sample: corrupt weights",
        "sample --model {d}/corrupt --out {d}/o22.npz",
        "not a valid safetensors file",
        "o22.npz",
    ),
    (
        "sample: --init without --strength",
        "sample --init {d}/one.npy --out {d}/o23.npz",
        "--init and --strength go together",
        "o23.npz",
    ),
    (
        "sample: --init not an array file",
        "sample --init {d}/text.npy --strength 0.5 --out {d}/o24.npz",
        "is not a NumPy array file",
        "o24.npz",
    ),
    (
        "sample: --init of the wrong shape",
        "sample --init {d}/wide.npy --strength 0.5 --out {d}/o25.npz",
        "the start samples have shape (3, 5)",
        "o25.npz",
    ),
    ("sample: --init NaN", "sample --init {d}/nan.npy --strength 0.5 -n 4 --out {d}/o26.npz", "NaN", "o26.npz"),
    (
        "sample: --strength above 1",
        "sample --init {d}/one.npy --strength 1.5 --out {d}/o27.npz",
        "Invalid value for '--strength'",
        "o27.npz",
    ),
    (
        "sample: increasing --ts",
        "sample --solver ode_heun --ts {d}/up.npy --out {d}/o28.npz",
        "strictly decreasing",
        "o28.npz",
    ),
    (
        "sample: --ts not an array file",
        "sample --ts {d}/text.npy --out {d}/o29.npz",
        "is not a NumPy array file",
        "o29.npz",
    ),
    ("sample: --cond of a single array", "sample --cond {d}/one.npy --out {d}/o30.npz", "single .npy array", "o30.npz"),
    ("sample: --grid of 2-D samples", "sample --grid {d}/g.png --out {d}/o31.npz", "are not images", "o31.npz"),
    ("sample: --grid suffix", "sample --grid {d}/g.txt --out {d}/o32.npz", "written as .png", "o32.npz"),
    (
        "sample: --class without a classifier",
        "sample --class 3 --out {d}/o33.npz",
        "has no noise-conditional classifier",
        "o33.npz",
    ),
    (
        "sample: --guidance without --class",
        "sample --guidance 2 --out {d}/o34.npz",
        "--guidance needs --class",
        "o34.npz",
    ),
    (
        "sample: --mask without --observation",
        "sample --mask {d}/mask.npy --out {d}/o35.npz",
        "needs both --mask and --observation",
        "o35.npz",
    ),
    ("likelihood: missing points", "likelihood --points {d}/none.npz", "does not exist", None),
    ("likelihood: points not an array file", "likelihood --points {d}/text.npy", "is not a NumPy array file", None),
    ("likelihood: points of the wrong shape", "likelihood --points {d}/wide.npy", "shape (3, 5)", None),
    ("likelihood: --key not in the file", "likelihood --points {d}/two.npz --key c", "name one with --key", None),
    ("likelihood: --key without --points", "likelihood --key a", "give --points too", None),
    ("likelihood: existing --out", "likelihood --out {d}/existing.npz", "exists; pass --force", None),
    ("likelihood: --out in a missing directory", "likelihood --out {d}/nodir/l.npz", "does not exist", None),
    ("likelihood: unknown estimator", "likelihood --estimator hutch -n 5", "unknown trace_estimator 'hutch'", None),
    ("likelihood: zero probes", "likelihood --n-probes 0", "Invalid value for '--n-probes'", None),
    (
        "train: --data neither file nor target",
        "train --data nothing --out {d}/t1",
        "--data 'nothing' is neither an .npz/.npy file nor a registered target",
        "t1",
    ),
    ("train: --data not an array file", "train --data {d}/text.npy --out {d}/t2", "--data", "t2"),
    (
        "train: --data with two arrays",
        "train --data {d}/two.npz --out {d}/t3",
        "name the training samples 'samples'",
        "t3",
    ),
    ("train: --data of one row", "train --data {d}/flat.npy --out {d}/t4", "one per row", "t4"),
    ("train: --data NaN", "train --data {d}/nan.npy --out {d}/t5", "holds NaN/Inf", "t5"),
    ("train: --out holds a model", "train --data ring2d --out {d}/trained", "already holds a result", None),
    ("train: --out is a file", "train --data ring2d --out {d}/a_file", "Invalid value for '--out'", None),
    (
        "train: --resume without --checkpoint",
        "train --data ring2d --out {d}/t6 --resume",
        "--resume needs --checkpoint",
        "t6",
    ),
    (
        "train: unknown weighting",
        "train --data ring2d --out {d}/t7 --steps 1 --no-progress --weighting foo",
        "weighting='foo'",
        "t7",
    ),
    ("bench: unknown solver", "bench --solvers nope --out {d}/b1 --no-plots --no-progress", "nope", "b1"),
    ("bench: non-integer budgets", "bench --nfe a,b --out {d}/b2", "comma-separated list of ints", "b2"),
    ("bench: --data without --model", "bench --data {d}/wide.npy --out {d}/b3", "--data applies to --model", "b3"),
    (
        "bench: too few data samples",
        "bench --model {ring} --data {d}/wide.npy --out {d}/b4 --no-plots --no-progress",
        "must hold finite samples of shape (n >= 4, ...)",
        "b4",
    ),
]


def argv(row_args: str, mapping: dict[str, str]) -> list[str]:
    text = row_args.replace("{huge}", " ".join(HUGE))
    for key, value in mapping.items():
        text = text.replace(key, value)
    return text.split()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad_cli")
    return d, make_files(d)


@pytest.mark.parametrize("args, fragment, unwritten", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_bad_command_line_is_one_clear_line_and_writes_nothing(files, args, fragment, unwritten):
    d, mapping = files
    result = CliRunner().invoke(cli, argv(args, mapping))
    assert result.exit_code == 2, (result.exit_code, result.output)  # bad input: 2, from every command
    assert isinstance(result.exception, SystemExit)  # not an exception escaping the command
    assert "Traceback" not in result.output
    message = fragment.replace("{d}", str(d))
    assert message in result.output, result.output
    if unwritten is not None:
        assert not (d / unwritten).exists()


BATCH = """
import contextlib, io, json, sys, traceback
from samplekit.cli import main
rows = json.loads(sys.argv[1])
for args in rows:
    err = io.StringIO()
    code = 0
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(args)
        except SystemExit as exc:
            code = exc.code
        except BaseException:
            traceback.print_exc()
            code = "exception"
    print(json.dumps({"code": code, "stderr": err.getvalue()}))
"""


def test_every_row_through_the_console_entry_point_in_a_separate_process(files):
    d, mapping = files
    rows = [argv(r[1], mapping) for r in ROWS]
    out = subprocess.run(
        [sys.executable, "-c", BATCH, json.dumps(rows)],
        check=False,
        capture_output=True,
        text=True,
        timeout=900,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert out.returncode == 0, out.stderr
    results = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(results) == len(ROWS)
    for (name, _, fragment, _), got in zip(ROWS, results):
        assert got["code"] == 2 and "Traceback" not in got["stderr"], (name, got)
        assert fragment.replace("{d}", str(d)) in got["stderr"], (name, got)
        errors = [ln for ln in got["stderr"].splitlines() if ln.startswith(("error: ", "Error: ", "Usage: "))]
        assert len(errors) == 1 and errors[0].startswith("error: "), (name, got)  # one style: error: ...


def test_python_dash_m_samplekit_prints_one_line_and_exits_2(files):
    """The module entry point (torchrun -m samplekit) too; the output check fails before torch is imported."""
    _, mapping = files
    args, fragment = "sample {huge} --out {d}/missing_dir/a.npz", "does not exist"
    out = subprocess.run(
        [sys.executable, "-m", "samplekit", *argv(args, mapping)],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr and fragment in out.stderr, out.stderr
    assert out.stderr.strip().count("\n") == 0 and out.stderr.startswith("error: ")
