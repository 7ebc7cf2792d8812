"""Shared fixtures: fresh plugin managers with inline plugins (as pluggy's and llm's tests do)."""

from __future__ import annotations

import pytest
import torch

from samplekit.plugins import build_registry, make_plugin_manager


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
