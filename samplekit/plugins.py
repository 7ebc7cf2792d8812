"""The plugin manager: third-party entry points first, then the built-ins, then the registry.

Loading follows llm, datasette and tox: load the entry-point group ``samplekit``,
import the ``DEFAULT_PLUGINS`` modules (built-in plugin packages shipped in the
same wheel), ``pm.check_pending()``, then call each registration hook once per
plugin with a ``register`` scoped to that plugin.  A plugin that fails to import
(say, its optional dependency is missing) is recorded in ``registry.failures``
and the others keep working.  ``SAMPLEKIT_DISABLE_PLUGINS=a,b`` blocks plugins.
"""

from __future__ import annotations

import importlib
import os
import sys
from importlib import metadata
from typing import Iterable

import pluggy

from samplekit import hookspecs
from samplekit.registry import PluginFailure, Registry

ENTRY_POINT_GROUP = "samplekit"

DEFAULT_PLUGINS: tuple[str, ...] = (
    "samplekit_builtin",
    "samplekit_torchdiffeq",
    "samplekit_torchsde",
    "samplekit_fast",
    "samplekit_loaders",
    "samplekit_models",
)


def disabled_plugins() -> set[str]:
    return {p.strip() for p in os.environ.get("SAMPLEKIT_DISABLE_PLUGINS", "").split(",") if p.strip()}


def make_plugin_manager(builtins: Iterable[str] = DEFAULT_PLUGINS, entry_points: bool = True,
                        extra: Iterable[object] = ()) -> tuple[pluggy.PluginManager, list[PluginFailure]]:
    """A fresh plugin manager and the list of plugins that failed to load.

    :param builtins: module names to import and register as built-in plugins.
    :param entry_points: also load third-party plugins from the ``samplekit`` entry-point group.
    :param extra: plugin objects (modules or instances) registered in-process, e.g. by tests.
    """
    pm = pluggy.PluginManager("samplekit")
    pm.add_hookspecs(hookspecs)
    failures: list[PluginFailure] = []
    blocked = disabled_plugins()
    for name in blocked:
        pm.set_blocked(name)
    if entry_points:
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in blocked or pm.get_plugin(ep.name) is not None:
                continue
            try:
                pm.register(ep.load(), name=ep.name)
            except Exception as exc:  # a broken third-party plugin must not break the rest
                failures.append(PluginFailure(ep.name, f"{type(exc).__name__}: {exc}"))
    for module_name in builtins:
        if module_name in blocked or pm.get_plugin(module_name) is not None:
            continue
        try:
            module = sys.modules.get(module_name) or importlib.import_module(module_name)
            pm.register(module, name=module_name)
        except Exception as exc:
            failures.append(PluginFailure(module_name, f"{type(exc).__name__}: {exc}"))
    for plugin in extra:
        pm.register(plugin)
    pm.check_pending()
    return pm, failures


def build_registry(pm: pluggy.PluginManager, failures: Iterable[PluginFailure] = ()) -> Registry:
    """Call every registration hook once per plugin, each with a register scoped to that plugin."""
    registry = Registry()
    registry.failures.extend(failures)
    for kind, hook_name in hookspecs.REGISTER_HOOKS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            impl.function(register=registry.scoped(kind, impl.plugin_name))
    return registry


_default_registry: Registry | None = None
_default_pm: pluggy.PluginManager | None = None


def get_plugin_manager() -> pluggy.PluginManager:
    get_registry()
    assert _default_pm is not None
    return _default_pm


def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _default_registry, _default_pm
    if _default_registry is None:
        pm, failures = make_plugin_manager()
        _default_registry = build_registry(pm, failures)
        _default_pm = pm
    return _default_registry


def reset() -> None:
    """Forget the process-wide registry (the next look-up reloads the plugins)."""
    global _default_registry, _default_pm
    _default_registry = None
    _default_pm = None
