"""Count host synchronisations on the samples' data: ``bool(t)``, ``t.item()``, ``float(t)``, ``int(t)``,
``t.tolist()``, ``t.cpu()``, ``t.numpy()`` on any tensor computed from x (a tensor subclass that every torch
op propagates), so the time grid's host-side float64 tensors, which never leave the CPU, are not counted."""

from __future__ import annotations

import torch

SYNCS = ("__bool__", "item", "__float__", "__int__", "__index__", "tolist", "cpu", "numpy")


class Tracked(torch.Tensor):
    """A tensor whose host reads are counted in ``Tracked.counts`` (by method name)."""

    counts: dict = {}


def _counting(name):
    base = getattr(torch.Tensor, name)

    def method(self, *args, **kwargs):
        Tracked.counts[name] = Tracked.counts.get(name, 0) + 1
        return base(self, *args, **kwargs)

    method.__name__ = name
    return method


for _name in SYNCS:
    setattr(Tracked, _name, _counting(_name))


def count_syncs(fn, x: torch.Tensor) -> int:
    """Host reads of data derived from ``x`` while ``fn(x_tracked)`` runs."""
    Tracked.counts = {}
    fn(x.as_subclass(Tracked))
    return sum(Tracked.counts.values())
