"""Reading one named array from a user's .npz or .npy file, without unpickling.

Every failure is an ``InputFileError`` naming the file (and the option, via ``what``) and the fix:
a missing file, a directory, a text or pickle file given as .npy/.npz, an object array, or an
.npz without the wanted array (``ArrayChoiceError``).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from samplekit.errors import ArrayChoiceError, InputFileError

__all__ = ["ArrayChoiceError", "read_array", "read_arrays"]


def _open(path: Path, what: str):
    if not path.exists():
        raise InputFileError(f"{what} {str(path)!r} does not exist; give an existing .npz or .npy file")
    if path.is_dir():
        raise InputFileError(f"{what} {str(path)!r} is a directory; give an .npz or .npy file")
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic != b"\x93NUMPY" and not magic.startswith(b"PK"):  # numpy would try to unpickle anything else
        raise InputFileError(
            f"{what} {str(path)!r} is not a NumPy array file (it starts with {magic!r}); save the "
            "array with numpy.save (.npy) or numpy.savez (.npz)"
        )
    try:
        return np.load(path, allow_pickle=False)
    except ValueError:  # numpy's "Object arrays cannot be loaded when allow_pickle=False"
        raise InputFileError(
            f"{what} {str(path)!r} holds pickled objects; samplekit reads only numeric arrays "
            "saved with numpy.save (.npy) or numpy.savez (.npz), and never unpickles"
        ) from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputFileError(
            f"{what} {str(path)!r} cannot be read as .npy/.npz ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200] if str(exc) else 'truncated'}); save it with "
            "numpy.save or numpy.savez"
        ) from None


def _numeric(array: np.ndarray, path: Path, what: str, name: str | None = None) -> np.ndarray:
    if array.dtype.kind not in "biuf":
        label = f"array {name!r} of " if name else ""
        raise InputFileError(
            f"{label}{what} {str(path)!r} has dtype {array.dtype}; save a numeric (bool, integer or float) array"
        )
    return array


def read_array(path: str | Path, wanted: str, only_if_single: bool = True, what: str = "file") -> np.ndarray:
    """The array of an .npy file; of an .npz, the array named ``wanted``, else (``only_if_single``)
    its only array.  ``what`` names the file in errors (e.g. "--points")."""
    path = Path(path)
    data = _open(path, what)
    if isinstance(data, np.ndarray):
        return _numeric(data, path, what)
    with data:
        names = list(data.files)
        name = wanted if wanted in names else names[0] if only_if_single and len(names) == 1 else None
        if name is not None:
            return _numeric(_member(data, name, path, what), path, what, name)
    raise ArrayChoiceError(path, names, wanted)


def read_arrays(path: str | Path, what: str = "file") -> dict[str, np.ndarray]:
    """Every array of an .npz file by name (an .npy file is refused: its array has no name)."""
    path = Path(path)
    data = _open(path, what)
    if isinstance(data, np.ndarray):
        raise InputFileError(
            f"{what} {str(path)!r} is a single .npy array; save named arrays with numpy.savez(path, name=array, ...)"
        )
    with data:
        return {name: _numeric(_member(data, name, path, what), path, what, name) for name in data.files}


def _member(data, name: str, path: Path, what: str) -> np.ndarray:
    try:
        return data[name]
    except ValueError:  # an object array inside the .npz
        raise InputFileError(
            f"array {name!r} of {what} {str(path)!r} holds pickled objects; samplekit reads only "
            "numeric arrays and never unpickles"
        ) from None
