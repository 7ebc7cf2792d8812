"""Bad model files and data files (issue 14): each row builds a broken input in a temporary directory,
loads it, and expects a samplekit error of the given class with a fragment of its message; nothing is
unpickled or executed (a payload would write a marker file) and no library error escapes as such.
"""

from __future__ import annotations

import json
import shutil
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

import samplekit as sk
from samplekit.arrays import read_array
from samplekit.errors import (
    CheckpointError,
    InputFileError,
    InvalidArgumentError,
    ResourceLimitError,
    SamplekitError,
    UnknownComponentError,
    UnsafeCheckpointError,
    UntrustedCodeError,
)
from samplekit.training.nets import TimeMLP

RING = Path(__file__).resolve().parents[1] / "plugins" / "samplekit_models" / "weights" / "ring2d_mlp"


class Payload:
    """Unpickling this runs code: exactly what samplekit must never do."""

    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


def native(tmp: Path, edit=None, weights: bytes | None = None) -> Path:
    """A copy of the shipped ring2d_mlp model with its samplekit.json edited by ``edit(config)``."""
    d = tmp / "model"
    shutil.copytree(RING, d)
    if edit is not None:
        config = json.loads((d / "samplekit.json").read_text())
        edit(config)
        (d / "samplekit.json").write_text(json.dumps(config))
    if weights is not None:
        (d / "model.safetensors").write_bytes(weights)
    return d


def options(**kw):
    return lambda config: config["architecture"]["options"].update(kw)


def set_key(key, value):
    return lambda config: config.__setitem__(key, value)


def drop_key(key):
    return lambda config: config.pop(key)


def scripted(tmp: Path) -> Path:
    torch.jit.script(TimeMLP(2, hidden=4, depth=1)).save(str(tmp / "net.ts"))
    return tmp / "net.ts"


def text_file(tmp: Path, name: str) -> Path:
    (tmp / name).write_text("1 2 3\n4 5 6\n")
    return tmp / name


def torch_args(**kw):
    return {"loader": "torch", "parametrization": "eps", "shape": (2,)} | kw


# (id, build(tmp) -> call(), expected class, message fragment)
ROWS = [
    (
        "native: no such directory",
        lambda tmp: lambda: sk.load_model(tmp / "nope", loader="samplekit"),
        CheckpointError,
        "has no samplekit.json",
    ),
    ("loader cannot be guessed", lambda tmp: lambda: sk.load_model(tmp), InvalidArgumentError, "pass loader="),
    (
        "unknown loader",
        lambda tmp: lambda: sk.load_model(RING, loader="samplekitt"),
        UnknownComponentError,
        "did you mean 'samplekit'",
    ),
    (
        "option the loader does not take",
        lambda tmp: lambda: sk.load_model(RING, parametrization="eps"),
        InvalidArgumentError,
        "takes no option 'parametrization'; it takes: dtype, name, max_params",
    ),
    (
        "native: samplekit.json not JSON",
        lambda tmp: partial(sk.load_model, _write(native(tmp) / "samplekit.json", "{oops")),
        CheckpointError,
        "not valid JSON",
    ),
    (
        "native: not a samplekit config",
        lambda tmp: lambda: sk.load_model(native(tmp, set_key("format", "x"))),
        SamplekitError,
        "is not a samplekit model config",
    ),
    (
        "native: missing key",
        lambda tmp: lambda: sk.load_model(native(tmp, drop_key("shape"))),
        SamplekitError,
        "lacks 'shape'",
    ),
    (
        "native: resource bomb (hidden=200000)",
        lambda tmp: lambda: sk.load_model(native(tmp, options(hidden=200000))),
        ResourceLimitError,
        "above max_params=2,000,000,000",
    ),
    (
        "native: negative width",
        lambda tmp: lambda: sk.load_model(native(tmp, options(hidden=-3))),
        CheckpointError,
        "cannot be built",
    ),
    (
        "native: unknown architecture option",
        lambda tmp: lambda: sk.load_model(native(tmp, options(widthh=3))),
        CheckpointError,
        "widthh",
    ),
    (
        "native: unknown architecture",
        lambda tmp: lambda: sk.load_model(native(tmp, lambda c: c["architecture"].update(name="transformer"))),
        CheckpointError,
        "'transformer'",
    ),
    (
        "native: weights of another width",
        lambda tmp: lambda: sk.load_model(native(tmp, options(hidden=64))),
        CheckpointError,
        "the weights do not fit the network: size mismatch",
    ),
    (
        "native: corrupt safetensors",
        lambda tmp: lambda: sk.load_model(native(tmp, weights=b"\x00garbage" * 8)),
        CheckpointError,
        "not a valid safetensors file",
    ),
    (
        "native: unknown SDE",
        lambda tmp: lambda: sk.load_model(native(tmp, lambda c: c["sde"].update(name="vpp"))),
        UnknownComponentError,
        "unknown sde 'vpp'",
    ),
    (
        "native: unknown SDE parameter",
        lambda tmp: lambda: sk.load_model(native(tmp, lambda c: c["sde"].update(params={"beta_mx": 2}))),
        InvalidArgumentError,
        "takes no option 'beta_mx'",
    ),
    (
        "native: unknown parametrization",
        lambda tmp: lambda: sk.load_model(native(tmp, set_key("parametrization", "noise"))),
        SamplekitError,
        "parametrization='noise'",
    ),
    (
        "native: resource bomb raised limit still checks",
        lambda tmp: lambda: sk.load_model(native(tmp, options(hidden=20000)), max_params=1e6),
        ResourceLimitError,
        "above max_params=1,000,000",
    ),
    (
        "torch: TorchScript without trust_code",
        lambda tmp: lambda: sk.load_model(scripted(tmp), **torch_args()),
        UntrustedCodeError,
        "trust_code=True (CLI --trust-code)",
    ),
    (
        "denoiser: TorchScript without trust_code",
        lambda tmp: lambda: sk.load_model(scripted(tmp), loader="denoiser", shape=(2,)),
        UntrustedCodeError,
        "is a TorchScript archive",
    ),
    (
        "torch: pickled module",
        lambda tmp: partial(sk.load_model, _save(TimeMLP(2, hidden=4, depth=1), tmp / "module.pt"), **torch_args()),
        UnsafeCheckpointError,
        "arbitrary unpickle",
    ),
    (
        "torch: pickle payload as weights",
        lambda tmp: partial(
            sk.load_model,
            _save({"w": torch.zeros(2), "evil": Payload()}, tmp / "evil.pt"),
            module=TimeMLP(2, hidden=4, depth=1),
            **torch_args(),
        ),
        UnsafeCheckpointError,
        "unpickle",
    ),
    (
        "torch: text file as weights",
        lambda tmp: lambda: sk.load_model(text_file(tmp, "w.pt"), module=TimeMLP(2, hidden=4, depth=1), **torch_args()),
        UnsafeCheckpointError,
        "not a plain tensor file",
    ),
    (
        "torch: weights of another network",
        lambda tmp: partial(
            sk.load_model,
            _save(TimeMLP(2, hidden=4, depth=1).state_dict(), tmp / "w.pt"),
            module=TimeMLP(2, hidden=8, depth=1),
            **torch_args(),
        ),
        CheckpointError,
        "the weights do not fit the network",
    ),
    (
        "torch: missing weights file",
        lambda tmp: (
            lambda: sk.load_model(tmp / "none.safetensors", module=TimeMLP(2, hidden=4, depth=1), **torch_args())
        ),
        CheckpointError,
        "does not exist",
    ),
    (
        "torch: no shape",
        lambda tmp: lambda: sk.load_model(TimeMLP(2), **torch_args(shape=None)),
        SamplekitError,
        "needs shape=",
    ),
    (
        "torch: no parametrization",
        lambda tmp: lambda: sk.load_model(TimeMLP(2), loader="torch", shape=(2,)),
        InvalidArgumentError,
        "model loader 'torch' needs parametrization=",
    ),
    (
        "diffusers: config files not JSON",
        lambda tmp: partial(
            sk.load_model,
            _write(tmp / "d" / "scheduler_config.json", "{") and _write(tmp / "d" / "config.json", "{"),
            loader="diffusers",
        ),
        SamplekitError,
        "not valid JSON",
    ),
    (
        "file: text given as .npy",
        lambda tmp: lambda: read_array(text_file(tmp, "x.npy"), "samples", what="--points"),
        InputFileError,
        "is not a NumPy array file",
    ),
    (
        "file: pickled object array",
        lambda tmp: lambda: read_array(_save_npy(np.array([{"a": 1}], dtype=object), tmp / "o.npy"), "samples"),
        InputFileError,
        "never unpickles",
    ),
    (
        "file: strings array",
        lambda tmp: lambda: read_array(_save_npy(np.array(["a", "b"]), tmp / "s.npy"), "x"),
        InputFileError,
        "has dtype <U1",
    ),
    ("file: directory", lambda tmp: lambda: read_array(tmp, "x", what="--init"), InputFileError, "is a directory"),
    (
        "file: truncated .npz",
        lambda tmp: lambda: read_array(_write(tmp / "t.npz", "PK\x03\x04junk"), "x"),
        InputFileError,
        "cannot be read as .npy/.npz",
    ),
    (
        "file: .npz without the array",
        lambda tmp: lambda: read_array(_savez(tmp / "two.npz", a=np.zeros(2), b=np.ones(2)), "samples"),
        InputFileError,
        "none named 'samples'",
    ),
]


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path.parent if path.name in ("samplekit.json", "config.json") else path


def _save(obj, path: Path) -> Path:
    torch.save(obj, path)
    return path


def _save_npy(array, path: Path) -> Path:
    np.save(path, array, allow_pickle=True)
    return path


def _savez(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("build, error, fragment", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_bad_model_or_data_file_is_a_clear_samplekit_error(tmp_path, monkeypatch, build, error, fragment):
    monkeypatch.chdir(tmp_path)
    call = build(tmp_path)
    with pytest.raises(SamplekitError) as caught:
        call()
    assert isinstance(caught.value, error), (type(caught.value), caught.value)
    assert fragment in str(caught.value), str(caught.value)
    assert len(str(caught.value)) < 800
    assert not (tmp_path / "PWNED").exists()


def test_trusted_torchscript_and_a_raised_limit_load(tmp_path):
    """The refusals above are choices, not breakage: trust_code=True loads the archive, a raised limit the model."""
    net = sk.load_model(scripted(tmp_path), trust_code=True, **torch_args())
    assert net(torch.zeros(3, 2), 0.5).shape == (3, 2)
    with pytest.raises(ResourceLimitError, match="above max_params=10,000"):
        sk.load_model(RING, max_params=1e4)  # the shipped ring model has 35k parameters
    assert sk.load_model(RING, max_params=1e5).shape == (2,)
