"""Finiteness and time-range checks that do not stop the device: flags kept on the device, read once.

Checking ``torch.isfinite(x).all()`` with ``if`` copies one bool to the host and waits for every queued
kernel; doing it per network call and per step serialises a GPU run.  Inside ``deferred()`` each check
instead records ``bad`` (a 0-d bool tensor on x's device, e.g. ``~isfinite(x).all()``) with the error it
would have raised, built lazily, and the step it was made in.  After the loop ``flag.raise_first()``
stacks the flags (one host synchronisation per run) and, if any is set, raises the error of the first
one, prefixed with its step: the same message as checking at once, and exact even for a network whose
failure is not reproducible on a replay.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch

from samplekit.errors import NonFiniteError

Tensor = torch.Tensor


class FiniteFlag:
    """Device-side bool flags with the errors they stand for; ``raise_first()`` is the one host sync."""

    def __init__(self) -> None:
        self.flags: list[Tensor] = []
        self.errors: list[tuple[Callable[[], Exception], Callable[[], str] | None]] = []
        self.where: Callable[[], str] | None = None  # the step being taken (prefixes errors raised inside it)

    def note(self, bad: Tensor, error: Callable[[], Exception]) -> None:
        self.flags.append(bad.reshape(()))
        self.errors.append((error, self.where))

    def first(self) -> int | None:
        """Index of the first set flag, or None (one host synchronisation)."""
        if not self.flags:
            return None
        device = self.flags[0].device
        bad = torch.stack([f.to(device) for f in self.flags])
        hit = int(torch.argmax(bad.to(torch.uint8))) if bool(bad.any()) else None
        return hit

    def raise_first(self) -> None:
        """Raise the error of the first set flag (prefixed with its step), if any flag is set."""
        hit = self.first()
        if hit is None:
            return
        make, where = self.errors[hit]
        error = make()
        if where is not None and isinstance(error, NonFiniteError):  # as integrate() prefixes it
            error = NonFiniteError(f"{where()}: {error}")
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


def check(bad: Tensor, error: Callable[[], Exception]) -> None:
    """Raise ``error()`` if the 0-d bool tensor ``bad`` is true; within ``deferred()`` note it instead."""
    flag = _ACTIVE.get()
    if flag is not None:
        flag.note(bad, error)
    elif bool(bad):
        raise error()


def check_finite(x: Tensor, message: str | Callable[[], str]) -> None:
    """NonFiniteError(message) if x holds NaN/Inf; ``message`` may be a callable, built only on failure."""
    check(~torch.isfinite(x).all(), lambda: NonFiniteError(message() if callable(message) else message))
