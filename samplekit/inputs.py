"""Extra network inputs bound to a ScoreModel (``model.condition(**inputs)``): which follow their sample.

The rule, checked when the inputs are bound and again before a run spends anything:

* a tensor whose first dimension is N > 1 is **per-sample**: row i belongs to sample i.  All
  per-sample inputs of a model share one N (``input_batch``), and a run must draw N samples;
  ``select(index)`` slices them for a sub-batch (chunking, sharding), so each row follows its sample;
* a tensor whose first dimension is 1 is **broadcast**: expanded (a view) to the batch evaluated;
* a 0-d tensor or any other value (an int, a string, None) is passed to the network as it is.

Inputs reach the network as keyword arguments under the network's own names; a network whose
signature has no ``**kwargs`` must accept each name (checked by ``bind_inputs``).
"""

from __future__ import annotations

import inspect

import torch

from samplekit.errors import ArgumentTypeError, InvalidArgumentError

Tensor = torch.Tensor
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _signature(net):
    """The network's call signature; an adapter that forwards its inputs to a wrapped network names that
    network's signature as ``inputs_signature`` (its first two parameters stand for (x, t))."""
    declared = getattr(net, "inputs_signature", None)
    if isinstance(declared, inspect.Signature):
        return declared
    fn = net.forward if isinstance(net, torch.nn.Module) else net
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


def required_inputs(net) -> tuple[str, ...]:
    """The names of the network's parameters beyond (x, t) that have no default."""
    sig = _signature(net)
    if sig is None:
        return ()
    params = list(sig.parameters.values())
    positional = [p for p in params if p.kind in _POSITIONAL]
    rest = positional[2:] + [p for p in params if p.kind == inspect.Parameter.KEYWORD_ONLY]
    return tuple(p.name for p in rest if p.default is inspect.Parameter.empty)


def _accepted(net) -> set[str] | None:
    """The keyword names the network accepts (None: any, it takes **kwargs or cannot be inspected)."""
    sig = _signature(net)
    if sig is None:
        return None
    params = list(sig.parameters.values())
    if any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    positional = [p for p in params if p.kind in _POSITIONAL]
    return {p.name for p in positional[2:] if p.kind != inspect.Parameter.POSITIONAL_ONLY} | {
        p.name for p in params if p.kind == inspect.Parameter.KEYWORD_ONLY
    }


def _leading(value) -> int | None:
    return int(value.shape[0]) if isinstance(value, Tensor) and value.ndim >= 1 else None


def bind_inputs(net, bound: dict, new: dict, model_name: str) -> tuple[dict, int | None]:
    """The inputs ``bound`` updated with ``new`` and their common per-sample size; clear errors otherwise."""
    if not new:
        raise InvalidArgumentError("condition() needs at least one input, e.g. model.condition(class_labels=y)")
    accepted = _accepted(net)
    for name in new:
        if accepted is not None and name not in accepted:
            raise ArgumentTypeError(
                f"network {model_name!r} has no parameter {name!r}; it accepts "
                f"{', '.join(sorted(accepted)) or 'only (x, t)'} — bind inputs under the network's own names"
            )
    new = {name: _as_tensor(value) for name, value in new.items()}
    for name, value in new.items():
        if name.endswith("labels"):
            _check_labels(net, name, value, model_name)
    merged = {**bound, **new}
    return merged, _common_batch(merged)


def _as_tensor(value):
    """A NumPy array as a tensor (networks take tensors); anything else as it is."""
    import numpy as np

    return torch.from_numpy(value) if isinstance(value, np.ndarray) else value


def _check_labels(net, name: str, labels, model_name: str) -> None:
    """Labels looked up in the network's class-embedding table (when it has one) are integers within it."""
    rows = _embedding_rows(net)
    if rows is None or not isinstance(labels, torch.Tensor):  # no embedding table: nothing known of the labels
        return
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ArgumentTypeError(
            f"{name} has dtype {labels.dtype}; class labels are integers: pass e.g. torch.tensor([3]) or labels.long()"
        )
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= rows):
        raise InvalidArgumentError(
            f"{name} holds {int(labels.min())}..{int(labels.max())}, outside the {rows} rows of network "
            f"{model_name!r}'s class embedding; pass labels in 0..{rows - 1}"
        )


def _embedding_rows(net) -> int | None:
    """Rows of the one class-embedding table (an ``nn.Embedding`` named like ``class_embed*``) of a torch network."""
    if not isinstance(net, torch.nn.Module):
        net = getattr(net, "module", None) or getattr(net, "net", None)
        if not isinstance(net, torch.nn.Module):
            return None
    rows = {
        m.num_embeddings for n, m in net.named_modules() if isinstance(m, torch.nn.Embedding) and "class_embed" in n
    }
    return rows.pop() if len(rows) == 1 else None


def _common_batch(inputs: dict) -> int | None:
    sizes = {name: _leading(v) for name, v in inputs.items() if _leading(v) not in (None, 1)}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{n!r} ({s} rows)" for n, s in sizes.items())
        raise InvalidArgumentError(
            f"per-sample inputs disagree on the number of samples: {listed}; give every per-sample "
            "input one row per sample, or a single row (first dimension 1) to broadcast"
        )
    return next(iter(sizes.values()), None)


def check_batch(inputs: dict, input_batch: int | None, num_samples: int, argument: str = "num_samples") -> None:
    """A clear error if per-sample inputs do not hold exactly ``num_samples`` rows."""
    if input_batch is None or input_batch == num_samples:
        return
    names = [n for n, v in inputs.items() if _leading(v) == input_batch]
    raise InvalidArgumentError(
        f"input(s) {', '.join(map(repr, names))} hold {input_batch} rows (one per sample) but "
        f"{argument}={num_samples}; pass one row per sample, or one row (first dimension 1) to "
        "broadcast the same value to every sample"
    )


def inputs_for_batch(inputs: dict, batch: int, device=None) -> dict:
    """The keyword arguments for one network call on ``batch`` samples (broadcast inputs expanded)."""
    out = {}
    for name, value in inputs.items():
        lead = _leading(value)
        if lead is not None:
            if lead == 1 and batch != 1:
                value = value.expand(batch, *value.shape[1:])
            elif lead != batch:
                raise InvalidArgumentError(
                    f"input {name!r} holds {lead} rows but the network is evaluated on {batch} samples; "
                    "select the sub-batch's rows with model.select(index)"
                )
            if device is not None and value.device != torch.device(device):
                value = value.to(device)
        out[name] = value
    return out


def select_inputs(inputs: dict, input_batch: int | None, index) -> tuple[dict, int | None]:
    """Per-sample inputs restricted to the samples ``index`` (a slice or an index tensor/list)."""
    if input_batch is None:
        return dict(inputs), None
    out = {}
    for name, value in inputs.items():
        if _leading(value) == input_batch:
            value = value[index] if isinstance(index, slice) else value[torch.as_tensor(index, device=value.device)]
        out[name] = value
    return out, _common_batch(out)


def expand_to_batch(value, batch: int):
    """``value`` as a tensor with ``batch`` rows (for concatenating two models' inputs in one call), or
    raise LookupError if it cannot be (a non-numeric value)."""
    lead = _leading(value)
    if lead == batch:
        return value
    if lead == 1:
        return value.expand(batch, *value.shape[1:])
    if lead is not None:
        raise LookupError(f"{lead} rows for a batch of {batch}")
    if isinstance(value, Tensor):
        return value.reshape(1).expand(batch)
    if isinstance(value, (bool, int, float)):
        return torch.full((batch,), value)
    raise LookupError(f"cannot batch a {type(value).__name__}")
