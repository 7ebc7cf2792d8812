"""Peer implementations for equivalence tests: k-diffusion's ``sampling.py`` loaded on its own.

k-diffusion is a test-only dependency (``pip install --no-deps k-diffusion==0.1.1.post1``): its package
``__init__`` imports torchvision, which does not import beside the CPU torch wheel, so only
``k_diffusion/sampling.py`` is loaded, under a stub package whose ``utils`` provides ``append_dims``.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import pytest


def kdiffusion_sampling():
    """k_diffusion.sampling without the package __init__; fails the test if k-diffusion is not installed
    (never skips a proof)."""
    if "k_diffusion.sampling" in sys.modules:
        return sys.modules["k_diffusion.sampling"]
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(
            "k-diffusion is not installed: `pip install --no-deps k-diffusion==0.1.1.post1` (make install does this)"
        )
    root = Path(list(spec.submodule_search_locations)[0])
    package = types.ModuleType("k_diffusion")
    package.__path__ = [str(root)]
    utils = types.ModuleType("k_diffusion.utils")
    utils.append_dims = lambda x, target_dims: x[(...,) + (None,) * (target_dims - x.ndim)]
    package.utils = utils
    sys.modules.update({"k_diffusion": package, "k_diffusion.utils": utils})
    sampling_spec = importlib.util.spec_from_file_location("k_diffusion.sampling", root / "sampling.py")
    module = importlib.util.module_from_spec(sampling_spec)
    sys.modules["k_diffusion.sampling"] = module
    sampling_spec.loader.exec_module(module)
    package.sampling = module
    return module
