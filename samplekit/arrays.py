"""Reading one named array from a user's .npz or .npy file, without unpickling."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class ArrayChoiceError(KeyError):
    """An .npz holds several arrays and none has the expected name."""

    def __init__(self, path, names: list[str], wanted: str) -> None:
        super().__init__(wanted)
        self.path, self.names, self.wanted = str(path), names, wanted

    def __str__(self) -> str:
        return f"{self.path} holds arrays {self.names}, none named {self.wanted!r}"


def read_array(path: str | Path, wanted: str, only_if_single: bool = True) -> np.ndarray:
    """The array of an .npy file; of an .npz, the array named ``wanted``, else (``only_if_single``)
    its only array."""
    data = np.load(path, allow_pickle=False)
    if isinstance(data, np.ndarray):
        return data
    with data:
        names = list(data.files)
        if wanted in names:
            return data[wanted]
        if only_if_single and len(names) == 1:
            return data[names[0]]
    raise ArrayChoiceError(path, names, wanted)
