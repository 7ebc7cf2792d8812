"""The ``samplekit`` loader: the native format (``model.safetensors`` + ``samplekit.json`` naming the
architecture, parametrisation, SDE and sample shape; see ``samplekit.loading``)."""

from __future__ import annotations

from samplekit.loading import NATIVE_WEIGHTS, read_native_config, read_tensors
from samplekit.training.nets import build_architecture
from samplekit.score import ScoreModel

from samplekit_loaders.torch_loader import _InputGradOnly, resolve_sde


def load_native(source, dtype=None, name: str | None = None) -> ScoreModel:
    """A native-format model directory (or its samplekit.json) as a ScoreModel."""
    directory, config = read_native_config(source)
    arch = config["architecture"]
    net = build_architecture(arch["name"], dict(arch.get("options", {})))
    net.load_state_dict(read_tensors(directory / NATIVE_WEIGHTS))
    if dtype is not None:
        net = net.to(dtype)
    sde = resolve_sde(config["sde"]["name"], config["sde"].get("params", {}))
    return ScoreModel(_InputGradOnly(net.eval()), sde, config["shape"], config["parametrization"],
                      name=name or config.get("name") or directory.name)
