"""The ``torch`` loader: a plain module, callable or TorchScript file net(x, t), with a stated
parametrisation (score / eps / x0 / v) and SDE.

    sk.load_model(net, loader="torch", parametrization="eps", sde="vp", shape=(2,))
    sk.load_model("net.ts", loader="torch", trust_code=True, ...)     # TorchScript archive: code, trusted only
    sk.load_model("weights.safetensors", loader="torch", module=MyNet(), ...)   # weights into a module

Weights files load with safetensors or ``torch.load(weights_only=True)``; a pickled module is refused.
"""

from __future__ import annotations

from pathlib import Path

import torch

from samplekit.loading import UnsafeCheckpointError, input_grad_only, read_tensors
from samplekit.score import ScoreModel
from samplekit.sde import SDE
from samplekit.trust import require_trust


def load_callable(source, trust_code: bool = False):
    """A callable from an object or a TorchScript archive (only with ``trust_code=True``; never an unpickle)."""
    if callable(source) and not isinstance(source, (str, Path)):
        return source
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"source {str(path)!r} does not exist; pass a callable or a TorchScript file")
    require_trust(path, trust_code)
    try:
        return torch.jit.load(str(path), map_location="cpu").eval()
    except Exception:
        raise UnsafeCheckpointError(
            f"{str(path)!r} is not a TorchScript archive. A pickled module (torch.save(model)) needs an "
            "arbitrary unpickle, which samplekit refuses: export it with torch.jit.script(model).save(path), "
            "or pass the module object and its weights (module=..., a safetensors/state-dict file)"
        ) from None


def resolve_sde(sde, sde_options: dict | None) -> SDE:
    if isinstance(sde, SDE):
        return sde
    from samplekit.api import get_sde

    return get_sde(sde, **(sde_options or {}))


def load_torch(
    source,
    parametrization: str,
    shape,
    sde="vp",
    sde_options: dict | None = None,
    module: torch.nn.Module | None = None,
    name: str | None = None,
    trust_code: bool = False,
) -> ScoreModel:
    """A torch network net(x, t) in a stated parametrisation and SDE as a ScoreModel."""
    if shape is None:
        raise ValueError("the torch loader needs shape=, one sample's shape, e.g. (2,) or (1, 8, 8)")
    if module is not None:
        module.load_state_dict(read_tensors(source))
        net = module.eval()
    else:
        net = load_callable(source, trust_code)
    if isinstance(net, torch.nn.Module):
        net.eval()
    label = name or (Path(source).stem if isinstance(source, (str, Path)) else type(net).__name__)
    return ScoreModel(_InputGradOnly(net), resolve_sde(sde, sde_options), shape, parametrization, name=label)


class _InputGradOnly:
    def __init__(self, net) -> None:
        self.net = net
        self.__signature__ = _signature(net)  # the net's own inputs, read by model.condition()

    def __call__(self, x, t, **inputs):
        with input_grad_only(x):
            return self.net(x, t, **inputs)


def _signature(net):
    import inspect

    try:
        return inspect.signature(net.forward if isinstance(net, torch.nn.Module) else net)
    except (TypeError, ValueError):
        return None
