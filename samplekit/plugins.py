"""The plugin manager: the built-ins, then third-party entry points, then the registry.

Loading follows llm, datasette and tox: import the ``DEFAULT_PLUGINS`` modules (built-in
plugin packages shipped in the same wheel), load the entry-point group ``samplekit``,
``pm.check_pending()`` plugin by plugin, then call each plugin's registration hooks with a
``register`` scoped to that plugin, all or nothing per plugin.  A plugin that fails to import
(say, its optional dependency is missing) is recorded in ``registry.failures``
and the others keep working.  ``SAMPLEKIT_DISABLE_PLUGINS=a,b`` blocks plugins.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable
from importlib import metadata

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
    "samplekit_schedules",
    "samplekit_fitted",
)


def disabled_plugins() -> set[str]:
    return {p.strip() for p in os.environ.get("SAMPLEKIT_DISABLE_PLUGINS", "").split(",") if p.strip()}


def make_plugin_manager(
    builtins: Iterable[str] = DEFAULT_PLUGINS, entry_points: bool = True, extra: Iterable[object] = ()
) -> tuple[pluggy.PluginManager, list[PluginFailure]]:
    """A fresh plugin manager and the list of plugins that failed to load.

    Built-ins are registered first, so their names win over a third-party plugin's.  A plugin that fails
    to import or to register, or that implements a hook samplekit does not have (pluggy's
    ``check_pending``, e.g. a misspelt hook name), is unregistered and recorded; the others keep working.

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
    for module_name in builtins:
        if module_name in blocked or pm.get_plugin(module_name) is not None:
            continue
        _register(pm, failures, module_name, lambda m=module_name: sys.modules.get(m) or importlib.import_module(m))
    if entry_points:
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in blocked:
                continue
            if pm.has_plugin(ep.name):
                failures.append(
                    PluginFailure(
                        ep.name, f"the plugin name {ep.name!r} is taken by a built-in plugin; rename the entry point"
                    )
                )
                continue
            _register(pm, failures, ep.name, ep.load)
    for plugin in extra:
        _register(pm, failures, None, lambda p=plugin: p)
    _drop_unknown_hooks(pm, failures)
    return pm, failures


def _register(pm: pluggy.PluginManager, failures: list[PluginFailure], name: str | None, load) -> None:
    """Import (``load()``) and register one plugin; record a failure instead of raising."""
    plugin = None
    try:
        plugin = load()
        pm.register(plugin, name=name)
    except Exception as exc:  # noqa: BLE001  (a broken plugin must not break the rest)
        label = name or (pm.get_canonical_name(plugin) if plugin is not None else "a plugin")
        failures.append(PluginFailure(label, f"{type(exc).__name__}: {exc}"))


def _drop_unknown_hooks(pm: pluggy.PluginManager, failures: list[PluginFailure]) -> None:
    """``check_pending`` per plugin: unregister each plugin that implements an unknown hook."""
    while True:
        try:
            pm.check_pending()
            return
        except pluggy.PluginValidationError as exc:
            name = pm.get_name(exc.plugin) or str(exc.plugin)
            pm.unregister(exc.plugin)
            known = ", ".join(sorted(n for n in dir(hookspecs) if n.startswith("samplekit_register_")))
            failures.append(PluginFailure(name, f"{exc}; samplekit's hooks are: {known}"))


def build_registry(pm: pluggy.PluginManager, failures: Iterable[PluginFailure] = ()) -> Registry:
    """Call each plugin's registration hooks, plugin by plugin in registration order (built-ins first), each
    with a register scoped to that plugin; a plugin whose hook raises (a duplicate name included) loses all
    its registrations and is recorded in ``registry.failures`` (``Registry.load_plugin``)."""
    registry = Registry()
    registry.failures.extend(failures)
    hooks: dict[str, list] = {}
    for kind, hook_name in hookspecs.REGISTER_HOOKS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            hooks.setdefault(impl.plugin_name, []).append((kind, impl.function))
    for name, _plugin in pm.list_name_plugin():
        if name in hooks:
            registry.load_plugin(name, hooks[name])
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
