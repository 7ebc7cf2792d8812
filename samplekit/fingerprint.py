"""Content fingerprints and the on-disk cache directory shared by fitted grids and fitted solvers.

``model_key(model)`` is the sha256 of a ScoreModel's content: its network's weights and code (or an
exact target's parameters), its parametrisation and bound inputs, never its call counter; the SDE is
hashed separately by callers that need it.  ``digest`` / ``weights_digest``: what the chunk index of a
``samplekit sample --out DIR`` run records (conditioning and guidance scalars included).
"""

from __future__ import annotations

import functools
import hashlib
import os
import types
from pathlib import Path
from typing import Any

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


# --- run digests for the chunk index (``samplekit.chunks.run_settings``) ---------------------------------------
# ``digest(obj)`` is a SHA-256 over everything reachable from ``obj`` that could change its output: tensors and
# arrays by dtype, shape and bytes; torch modules by class and ``state_dict``; numbers, strings, None; lists,
# tuples and dicts by their items; functions by their qualified name and closure; other objects by their class
# and attributes (a few levels deep, each object once), never by a repr holding a memory address.  Call
# counters (``_counter``) are left out.  ``weights_digest(obj)`` covers only the torch modules' state.
SKIPPED = frozenset({"_counter"})
MAX_DEPTH = 8


def digest(obj: Any) -> str:
    """Hex SHA-256 of ``obj``'s content (see the module docstring)."""
    h = hashlib.sha256()
    _content(h, obj, 0, set(), modules_only=False)
    return h.hexdigest()


def weights_digest(obj: Any) -> str:
    """Hex SHA-256 of the state of every torch module reachable from ``obj`` ("none" if it holds none)."""
    h = hashlib.sha256()
    found = _content(h, obj, 0, set(), modules_only=True)
    return h.hexdigest() if found else "none"


def _tensor(h, t: torch.Tensor) -> None:
    t = t.detach()
    if t.device.type == "meta":
        h.update(f"meta{t.dtype}{tuple(t.shape)}".encode())
        return
    t = t.to("cpu").contiguous()
    h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")


def _content(h, obj: Any, depth: int, seen: set[int], modules_only: bool) -> bool:
    """Feed obj into h; True if a torch module was found."""
    import numpy as np

    if isinstance(obj, (bool, int, float, complex, str, bytes, type(None))):
        if not modules_only:
            h.update(f"{type(obj).__name__}:{obj!r};".encode())
        return False
    if isinstance(obj, torch.Tensor):
        if not modules_only:
            _tensor(h, obj)
        return False
    if isinstance(obj, np.ndarray):
        if not modules_only:
            h.update(f"A{obj.dtype}{obj.shape}".encode())
            h.update(np.ascontiguousarray(obj).tobytes() if obj.dtype != object else repr(obj).encode())
        return False
    if id(obj) in seen or depth > MAX_DEPTH:
        return False
    seen.add(id(obj))
    if isinstance(obj, torch.nn.Module):
        h.update(f"M{type(obj).__qualname__}".encode())
        for name, value in obj.state_dict().items():
            h.update(name.encode())
            _tensor(h, value)
        return True
    found = False
    if isinstance(obj, dict):
        for key in sorted(obj, key=repr):
            if not modules_only:
                h.update(f"K{key!r}".encode())
            found |= _content(h, obj[key], depth + 1, seen, modules_only)
        return found
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
        if not modules_only:
            h.update(f"L{type(obj).__name__}{len(items)}".encode())
        for item in items:
            found |= _content(h, item, depth + 1, seen, modules_only)
        return found
    if isinstance(obj, (torch.dtype, torch.device)):
        if not modules_only:
            h.update(str(obj).encode())
        return False
    if not modules_only:
        h.update(f"O{type(obj).__module__}.{type(obj).__qualname__}".encode())
    if isinstance(obj, types.MethodType):  # a bound method: its function and its instance
        if not modules_only:
            h.update(obj.__func__.__qualname__.encode())
        return _content(h, obj.__self__, depth + 1, seen, modules_only)
    if isinstance(obj, functools.partial):
        parts = (obj.func, obj.args, obj.keywords)
        return _content(h, parts, depth + 1, seen, modules_only)
    if isinstance(obj, types.FunctionType) and not modules_only:
        h.update(f"{obj.__module__}.{obj.__qualname__}".encode())
    for cell in getattr(obj, "__closure__", None) or ():  # a closure's captured values
        try:
            found |= _content(h, cell.cell_contents, depth + 1, seen, modules_only)
        except ValueError:  # an empty cell
            pass
    attrs = getattr(obj, "__dict__", None)
    if attrs is None:
        attrs = {s: getattr(obj, s) for s in getattr(type(obj), "__slots__", ()) if hasattr(obj, s)}
    for key in sorted(attrs):
        if key in SKIPPED:
            continue
        if not modules_only:
            h.update(f"K{key}".encode())
        found |= _content(h, attrs[key], depth + 1, seen, modules_only)
    return found
