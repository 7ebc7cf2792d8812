"""Write a file whole or not at all, without following links or clobbering: the one way outputs reach disk.

The bytes go to a new temporary file beside the target, created with ``O_CREAT | O_EXCL | O_NOFOLLOW``
under an unpredictable name (a planted file or symlink of that name makes the open fail instead of
redirecting the write), flushed and fsynced, then moved into place: with ``replace=True`` by ``os.replace``;
otherwise by ``os.link`` (which fails if the target exists, so a file that appeared after the command's
checks is never replaced) and unlinking the temporary name.  Either way a killed run leaves the old file
or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from samplekit.errors import OutputError

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object], replace: bool = False) -> Path:
    """``write(f)`` into a fresh temporary file, then move it to ``path``; an existing ``path`` is refused
    (``OutputError``) unless ``replace``.  Returns ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(tmp, _FLAGS, 0o666)
    except FileExistsError:  # a random name taken: something planted there; write nothing through it
        raise OutputError(f"cannot create a fresh temporary file {str(tmp)!r} beside {str(path)!r}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            _link_new(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return path


def _link_new(tmp: Path, path: Path) -> None:
    try:
        os.link(tmp, path, follow_symlinks=False)
    except FileExistsError:
        raise OutputError(
            f"{str(path)!r} appeared while this run was writing; nothing was replaced: pass --force to "
            "overwrite it, or choose another name"
        ) from None
    except OSError:  # a file system without hard links: the check and the move are then two steps
        if os.path.lexists(path):
            raise OutputError(f"{str(path)!r} exists; pass --force to overwrite it, or choose another name") from None
        os.replace(tmp, path)
