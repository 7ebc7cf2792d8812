"""Output paths, checked before any work is spent: the directory exists and is writable, the suffix is
the one written, and an existing file is replaced only with ``--force``.  Files are written to a temporary
name beside the target and moved into place, so a failed run never leaves half a file."""

from __future__ import annotations

import os
from pathlib import Path

from samplekit.errors import OutputError


def _check_parent(path: Path, option: str) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise OutputError(
            f"{option} {str(path)!r}: the directory {str(parent)!r} does not exist; create it first (mkdir -p {parent})"
        )
    if not parent.is_dir():
        raise OutputError(f"{option} {str(path)!r}: {str(parent)!r} is not a directory")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"{option} {str(path)!r}: the directory {str(parent)!r} is not writable")


def output_file(
    out: str | os.PathLike, force: bool, option: str = "--out", suffix: str = ".npz", default_name: str | None = None
) -> Path:
    """The file a command will write for ``option``: ``out`` itself if it ends in ``suffix``; with
    ``default_name``, ``out/default_name`` when ``out`` is a directory or has no suffix (made if missing).
    Refuses another suffix, a missing or read-only parent directory, and an existing file without ``force``."""
    path = Path(out)
    if default_name is not None and (path.is_dir() or (not path.suffix and not path.exists())):
        if not path.is_dir():
            _check_parent(path, option)
        path = path / default_name
    elif path.suffix.lower() != suffix:
        also = " or a directory" if default_name else ""
        raise OutputError(
            f"{option} {str(path)!r}: this file is written as {suffix}; give a name ending in "
            f"{suffix} (e.g. {path.with_suffix(suffix).name}){also}"
        )
    elif path.is_dir():
        raise OutputError(f"{option} {str(path)!r} is a directory; give a file name ending in {suffix}")
    else:
        _check_parent(path, option)
    if path.exists() and not force:
        raise OutputError(f"{option} {str(path)!r} exists; pass --force to overwrite it, or choose another name")
    return path


def output_dir(out: str | os.PathLike, force: bool, marker: str, option: str = "--out") -> Path:
    """A directory a command will write into; refused if it is a file, or already holds ``marker`` (a
    previous result) without ``force``."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{option} {str(path)!r} is a file; give a directory")
    if not path.exists():
        _check_parent(path, option)
    elif (path / marker).exists() and not force:
        raise OutputError(
            f"{option} {str(path)!r} already holds a result ({marker}); pass --force to overwrite "
            "it, or choose another directory"
        )
    return path


def write_npz(path: Path, **arrays) -> Path:
    """``numpy.savez`` to exactly ``path`` (no suffix appended), atomically."""
    import numpy as np

    path.parent.mkdir(exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
