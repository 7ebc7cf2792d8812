"""Output paths, resolved once and checked before any work is spent: the directory exists and is writable,
the suffix is the one written, and an existing file is replaced only with ``--force``.  Files are written
through ``samplekit.atomic`` (a fresh temporary file beside the target, moved into place), so a failed run
never leaves half a file and never writes through a planted link."""

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


def names_directory(out: str | os.PathLike) -> bool:
    """Whether ``out`` names a directory to write into: it ends in a path separator, is an existing
    directory, or has no suffix and does not exist.  The one reading of ``--out``, used everywhere."""
    text = os.fspath(out)
    path = Path(text)
    if text.endswith(("/", os.sep)):
        return True
    try:
        return path.is_dir() or (not path.suffix and not path.exists())
    except OSError:  # a name the file system cannot hold: output_file says so
        return False


def output_file(
    out: str | os.PathLike, force: bool, option: str = "--out", suffix: str = ".npz", default_name: str | None = None
) -> Path:
    """The file a command will write for ``option``: ``out`` itself if it ends in ``suffix``; with
    ``default_name``, ``out/default_name`` when ``out`` names a directory (``names_directory``; made if missing).
    Refuses an empty name, another suffix, a missing or read-only parent directory, a name the file system
    cannot hold, and an existing file without ``force``."""
    if not os.fspath(out).strip():
        raise OutputError(
            f"{option} is empty; give a file name ending in {suffix}" + (" or a directory" if default_name else "")
        )
    try:
        return _output_file(out, force, option, suffix, default_name)
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        raise OutputError(
            f"{option} {os.fspath(out)[:80]!r}...: {exc.strerror or exc}; choose a shorter or valid name"
        ) from None


def _output_file(out, force: bool, option: str, suffix: str, default_name: str | None) -> Path:
    path = Path(out)
    if default_name is not None and names_directory(out):
        if path.exists() and not path.is_dir():
            raise OutputError(
                f"{option} {os.fspath(out)!r} names a directory but {str(path)!r} is a file; choose another"
            )
        if not path.is_dir():
            _check_parent(path, option)
        path = path / default_name
    elif path.suffix.lower() != suffix:
        also = " or a directory" if default_name else ""
        raise OutputError(
            f"{option} {str(path)!r}: this file is written as {suffix}; give a name ending in "
            f"{suffix} (e.g. {path.with_suffix(suffix).name}){also}"
        )
    elif path.is_dir() or os.fspath(out).endswith(("/", os.sep)):
        raise OutputError(f"{option} {os.fspath(out)!r} is a directory; give a file name ending in {suffix}")
    else:
        _check_parent(path, option)
    _check_name_length(path, option)
    if path.exists() and not force:
        raise OutputError(f"{option} {str(path)!r} exists; pass --force to overwrite it, or choose another name")
    return path


def _check_name_length(path: Path, option: str) -> None:
    """The file name, and the temporary name it is written through (``atomic``: 22 characters more), fit."""
    parent = path.parent if path.parent.is_dir() else Path(".")
    try:
        limit = os.pathconf(parent, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        limit = 255
    if len(os.fsencode(path.name)) + 22 > limit:
        raise OutputError(
            f"{option} {path.name[:40]!r}... is {len(path.name)} characters: File name too long (this file "
            f"system allows {limit}, less 22 for the temporary name); choose a shorter name"
        )


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


def write_npz(path: Path, force: bool = False, **arrays) -> Path:
    """``numpy.savez`` to exactly ``path`` (no suffix appended), atomically (``atomic.atomic_write``); an
    existing file is replaced only with ``force``."""
    import numpy as np

    from samplekit.atomic import atomic_write

    path.parent.mkdir(exist_ok=True)
    return atomic_write(path, lambda f: np.savez(f, **arrays), replace=force)
