"""The ``samplekit`` loader: the native format (``model.safetensors`` + ``samplekit.json`` naming the
architecture, parametrisation, SDE and sample shape; see ``samplekit.loading``)."""

from __future__ import annotations

from samplekit.loading import NATIVE_WEIGHTS, read_native_config, read_tensors
from samplekit.score import ScoreModel
from samplekit.training.nets import build_architecture
from samplekit_loaders.torch_loader import _InputGradOnly, resolve_sde

MAX_PARAMS = 2_000_000_000  # the diffusers loader's default too; raise it with max_params=


def load_native(source, dtype=None, name: str | None = None, max_params: float = MAX_PARAMS) -> ScoreModel:
    """A native-format model directory (or its samplekit.json) as a ScoreModel; an architecture of more
    than ``max_params`` parameters is refused before anything is allocated."""
    directory, config = read_native_config(source)
    arch = config["architecture"]
    check_size(arch, max_params, str(directory / "samplekit.json"))
    net = build_architecture(arch["name"], dict(arch.get("options", {})))
    net.load_state_dict(read_tensors(directory / NATIVE_WEIGHTS))
    if dtype is not None:
        net = net.to(dtype)
    sde = resolve_sde(config["sde"]["name"], config["sde"].get("params", {}))
    _check_shape_fits(net, config["shape"], sde, str(directory / "samplekit.json"))
    return ScoreModel(
        _InputGradOnly(net.eval()),
        sde,
        config["shape"],
        config["parametrization"],
        name=name or config.get("name") or directory.name,
    )


def _check_shape_fits(net, shape, sde, where: str) -> None:
    """One sample of the config's ``shape`` through the network (a dry call, no gradient): it must run and
    return that shape, else the config does not describe this network."""
    import torch

    from samplekit.errors import CheckpointError

    try:
        dims = tuple(int(n) for n in shape)
        param = next(net.parameters(), None)
        dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
        with torch.no_grad():
            out = net(torch.zeros(1, *dims, dtype=dtype), torch.full((1,), float(sde.T), dtype=dtype))
        fits = isinstance(out, torch.Tensor) and tuple(out.shape) == (1, *dims)
        detail = f"it returns {tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}"
    except Exception as exc:  # noqa: BLE001  (any failure of the dry call means the shape does not fit)
        fits, detail = False, f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
    if not fits:
        raise CheckpointError(
            f"{where}: shape {list(shape)} does not fit architecture {type(net).__name__} ({detail}); "
            "fix 'shape' (one sample's shape) to the network's input"
        )


def check_size(arch: dict, max_params: float, where: str) -> int:
    """The parameter count of the config's architecture, built on the meta device (no memory); refused above
    ``max_params`` or when the options cannot build it."""
    import torch

    from samplekit.errors import CheckpointError, ResourceLimitError

    try:
        with torch.device("meta"):
            net = build_architecture(arch["name"], dict(arch.get("options", {})))
    except Exception as exc:
        raise CheckpointError(
            f"{where}: architecture {arch.get('name')!r} with options {arch.get('options')} "
            f"cannot be built ({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})"
        ) from None
    n = sum(p.numel() for p in net.parameters())
    if n > max_params:
        raise ResourceLimitError(
            f"{where}: the architecture asks for {n:,} parameters ({4 * n / 2**30:.1f} GiB in "
            f"float32), above max_params={max_params:,.0f}; if the model is really that large, "
            "raise the limit: load_model(..., max_params=N)"
        )
    return n
