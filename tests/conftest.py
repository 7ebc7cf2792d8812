"""Shared fixtures: fresh plugin managers with inline plugins (as pluggy's and llm's tests do)."""

from __future__ import annotations

import pytest
import torch

from samplekit.plugins import build_registry, make_plugin_manager

# One intra-op thread per test process: `pytest -n 2` already fills both cores, and two torch
# threads per worker on a busy machine made small-tensor ops 40x slower (measured: 365 ms vs
# 9 ms per exact-score call on 4000 points under load).
torch.set_num_threads(1)


@pytest.fixture
def fresh_registry():
    """Build a registry from a fresh plugin manager: ``fresh_registry(*plugins, builtins=(), entry_points=False)``."""

    def build(*plugins, builtins=(), entry_points=False):
        pm, failures = make_plugin_manager(builtins=builtins, entry_points=entry_points, extra=plugins)
        return build_registry(pm, failures)

    return build


@pytest.fixture(autouse=True)
def _float64_default_off():
    """Tests choose their dtype explicitly; make sure no test leaks a changed default dtype."""
    before = torch.get_default_dtype()
    yield
    torch.set_default_dtype(before)
