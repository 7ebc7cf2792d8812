"""Finiteness and time-range checks that do not stop the device: one running flag per run, read once.

Checking ``torch.isfinite(x).all()`` with ``if`` copies one bool to the host and waits for every queued
kernel; doing it per network call and per step serialises a GPU run.  Inside ``deferred()`` each check
instead folds ``bad`` (a 0-d bool tensor on x's device, e.g. ``~isfinite(x).all()``) into a few 0-d device
tensors updated in place: ``hit |= bad``, and, only where ``bad & ~hit`` (the first set check), the check's
site, the step being taken and the t range checked.  The run thus keeps O(1) objects whatever its length
(a list of per-check flags and error closures would keep several per step, which fragments the host heap
between large activation blocks).  After the loop ``flag.raise_first()`` reads ``hit`` (one host
synchronisation per run) and, if set, raises the error of the first set check built from what the device
recorded: the same message as checking at once, exact even for a network whose failure is not reproducible
on a replay.

A check names its ``site`` (a hashable key for the error it stands for, fixed per model or per call site) and
an error maker ``make(failure)`` that receives a ``Failure``: the step being taken (``where``) and the t
range checked (``t``), so the maker captures nothing that changes from step to step.  One maker per site is
kept.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import torch

from samplekit.errors import InvalidArgumentError, NonFiniteError

Tensor = torch.Tensor


@dataclass(frozen=True)
class Failure:
    """What is known of a failed check: the step being taken (``where``, e.g. "step 2 of 10 (t=0.8 -> 0.7)
    of solver 'ddim'", or None) and the t range it checked (``t`` = tensor([min, max]), or None)."""

    where: str | None = None
    t: Tensor | None = None

    @property
    def span(self) -> str:
        """The t range as text: "0.7" or "[0.1 .. 0.7]"."""
        if self.t is None:
            return "?"
        lo, hi = float(self.t.min()), float(self.t.max())
        return f"{lo:g}" if lo == hi else f"[{lo:g} .. {hi:g}]"


ErrorMaker = Callable[[Failure], Exception]
_PREFIXED = (NonFiniteError, InvalidArgumentError)  # errors whose message gains the step they were noted in


class FiniteFlag:
    """One running device flag with the first failure's site, step and t; ``raise_first()`` is the one sync."""

    def __init__(self) -> None:
        self.step: int | None = None  # the step being taken, set by the loop (prefixes errors noted in it)
        self.describe: Callable[[int], str] | None = None  # step index -> "step i of n (t=..) of solver .."
        self._sites: dict[Hashable, int] = {}
        self._makers: list[ErrorMaker] = []
        self._hit: Tensor | None = None  # 0-d bool: any check set
        self._site: Tensor | None = None  # 0-d int64: the first set check's site index
        self._at: Tensor | None = None  # 0-d int64: the step it was noted in (-1: outside a step)
        self._t: Tensor | None = None  # (2,): the t range it checked

    def note(self, bad: Tensor, make: ErrorMaker, site: Hashable, t: Tensor | None = None) -> None:
        """Fold the 0-d bool ``bad`` into the flag; if it is the first set check, record site, step and t."""
        index = self._sites.get(site)
        if index is None:
            index = self._sites[site] = len(self._makers)
            self._makers.append(make)
        if self._hit is None:
            device = bad.device
            self._hit = torch.zeros((), dtype=torch.bool, device=device)
            self._site = torch.zeros((), dtype=torch.int64, device=device)
            self._at = torch.full((), -1, dtype=torch.int64, device=device)
        assert self._site is not None and self._at is not None
        bad = bad.detach().reshape(()).to(self._hit.device)
        fresh = bad & ~self._hit
        self._site.masked_fill_(fresh, index)
        self._at.masked_fill_(fresh, -1 if self.step is None else self.step)
        if t is not None:
            t = t.detach()
            span = torch.stack([t.min(), t.max()]).to(self._hit.device)
            if self._t is None:
                self._t = torch.zeros(2, dtype=span.dtype, device=self._hit.device)
            self._t.copy_(torch.where(fresh, span.to(self._t.dtype), self._t))
        self._hit.logical_or_(bad)

    def raise_first(self) -> None:
        """Raise the error of the first set check (prefixed with its step), if any check was set."""
        if self._hit is None or not bool(self._hit):  # the one host synchronisation
            return
        assert self._site is not None and self._at is not None
        step = int(self._at)
        where = self.describe(step) if step >= 0 and self.describe is not None else None
        t = None if self._t is None else self._t.detach().to("cpu", torch.float64)
        error = self._makers[int(self._site)](Failure(where, t))
        if where is not None and isinstance(error, _PREFIXED) and not str(error).startswith(where):
            error = type(error)(f"{where}: {error}")  # as integrate() prefixes an error raised in a step
        raise error


_ACTIVE: ContextVar[FiniteFlag | None] = ContextVar("samplekit_finite_flag", default=None)


@contextmanager
def deferred() -> Iterator[FiniteFlag]:
    """Within this block, checks note into the yielded flag instead of raising (and synchronising)."""
    flag = FiniteFlag()
    token = _ACTIVE.set(flag)
    try:
        yield flag
    finally:
        _ACTIVE.reset(token)


def active() -> FiniteFlag | None:
    """The flag of the innermost ``deferred()`` block, or None when checks are immediate."""
    return _ACTIVE.get()


def check(bad: Tensor, make: ErrorMaker, site: Hashable, t: Tensor | None = None) -> None:
    """Raise ``make(Failure(t=[min t, max t]))`` if the 0-d bool ``bad`` is true; within ``deferred()``
    note it in the flag instead.  ``site`` keys the maker (one kept per site)."""
    flag = _ACTIVE.get()
    if flag is not None:
        flag.note(bad, make, site, t)
    elif bool(bad):
        span = None if t is None else torch.stack([t.detach().min(), t.detach().max()]).to("cpu", torch.float64)
        raise make(Failure(None, span))


def check_finite(x: Tensor, make: ErrorMaker, site: Hashable, t: Tensor | None = None) -> None:
    """``check`` that x holds no NaN/Inf."""
    check(~torch.isfinite(x).all(), make, site, t)
