"""read_array: one named array from a user's .npz/.npy, never unpickled."""

from __future__ import annotations

import numpy as np
import pytest

from samplekit.arrays import ArrayChoiceError, read_array


def test_named_array_then_the_only_array_then_an_error_naming_the_arrays(tmp_path):
    a, b = np.arange(6.0).reshape(3, 2), np.ones((2, 2))
    np.savez(tmp_path / "two.npz", samples=a, other=b)
    np.savez(tmp_path / "one.npz", points=b)
    np.save(tmp_path / "plain.npy", a)
    assert np.array_equal(read_array(tmp_path / "two.npz", "samples"), a)
    assert np.array_equal(read_array(tmp_path / "one.npz", "samples"), b)
    assert np.array_equal(read_array(tmp_path / "plain.npy", "samples"), a)
    with pytest.raises(ArrayChoiceError, match=r"\['samples', 'other'\], none named 'mask'"):
        read_array(tmp_path / "two.npz", "mask")
    with pytest.raises(ArrayChoiceError, match="none named 'samples'"):
        read_array(tmp_path / "one.npz", "samples", only_if_single=False)


def test_object_arrays_are_refused_not_unpickled(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="never unpickles"):
        read_array(tmp_path / "obj.npy", "samples")
