"""Content fingerprints and the on-disk cache directory shared by fitted grids and fitted solvers.

``model_key(model)`` is the sha256 of a ScoreModel's content: its network's weights and code (or an
exact target's parameters), its parametrisation and bound inputs, never its call counter; the SDE is
hashed separately by callers that need it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch


def default_cache_dir(option=None) -> Path:
    if option is not None:
        return Path(option)
    if os.environ.get("SAMPLEKIT_CACHE_DIR"):
        return Path(os.environ["SAMPLEKIT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "samplekit"


def _feed(h, obj, depth: int = 0, seen=None, scalars: bool = True) -> None:
    """Hash the content of obj: tensors by bytes, modules by state_dict, functions by code and closure.

    With ``scalars=False`` (the model's walk) Python numbers are left out: a network's identity is its
    weights and code, not mutable counters kept beside it (a call counter must not move the key)."""
    seen = set() if seen is None else seen
    if not scalars and isinstance(obj, (int, float, bool)):
        return
    if id(obj) in seen or depth > 6:
        return
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    elif isinstance(obj, torch.nn.Module):
        h.update(type(obj).__qualname__.encode())
        for k, v in obj.state_dict().items():
            h.update(k.encode())
            _feed(h, v, depth + 1, seen, scalars)
        for k, v in sorted(vars(obj).items()):  # plain attributes too: a wrapped function, a config
            if not k.startswith("_") and k != "training":
                h.update(k.encode())
                _feed(h, v, depth + 1, seen, scalars)
    elif isinstance(obj, (int, float, str, bool, type(None))):
        h.update(repr(obj).encode())
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _feed(h, v, depth + 1, seen, scalars)
    elif isinstance(obj, dict):
        for k in sorted(obj, key=repr):
            h.update(repr(k).encode())
            _feed(h, obj[k], depth + 1, seen, scalars)
    elif callable(obj) and hasattr(obj, "__code__"):
        h.update(obj.__code__.co_code)
        h.update(repr(obj.__code__.co_consts).encode())
        for cell in obj.__closure__ or ():
            try:
                _feed(h, cell.cell_contents, depth + 1, seen, scalars)
            except ValueError:  # an empty cell
                pass
        if getattr(obj, "__self__", None) is not None:
            _feed(h, obj.__self__, depth + 1, seen, scalars)
    elif hasattr(obj, "__dict__"):
        h.update(type(obj).__qualname__.encode())
        _feed(h, vars(obj), depth + 1, seen, scalars)
    else:
        h.update(repr(obj).encode())


def model_key(model) -> str:
    """sha256 of the model's content (net, parametrisation, bound inputs), without its SDE or counter."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in vars(model).items() if k not in ("sde", "_counter")}, scalars=False)
    return h.hexdigest()
