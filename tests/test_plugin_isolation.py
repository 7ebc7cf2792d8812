"""One broken plugin never takes the rest down (issue 14, "Plugins").

Each row is an inline plugin registered in a fresh plugin manager beside the real built-in
``samplekit_builtin``: the broken plugin is listed as failed with its error, none of its components
are loaded, and the built-ins keep their names and work.  The last test installs a broken plugin
with pip (a wheel built here, installed into a temporary --target) and runs the CLI and the API on it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import samplekit as sk
from samplekit.hookspecs import hookimpl

BUILTIN = "samplekit_builtin"


def plugin(name: str, **hooks) -> types.ModuleType:
    """An inline plugin module; ``hooks`` maps an attribute name to its (undecorated) function."""
    module = types.ModuleType(name)
    for attr, fn in hooks.items():
        setattr(module, attr, hookimpl(fn))
    return module


def solver_named(name: str) -> type:
    return type(name, (sk.Solver,), {"name": name, "__doc__": f"{name}, a test solver"})


def registers(*names: str):
    def samplekit_register_solvers(register):
        for n in names:
            register(solver_named(n))

    return samplekit_register_solvers


def boom(register):
    raise RuntimeError("this plugin's hook is broken")


def misspelt(register):  # registered under a hook name samplekit does not have
    register(solver_named("never_seen"))


def wrong_argument(reg):  # a known hook, but pluggy cannot call it: the argument is 'register'
    reg(solver_named("never_seen"))


# (case, the bad plugin, error fragment in its failure)
CASES = [
    (
        "name of a built-in",
        plugin("bad", samplekit_register_solvers=registers("own_solver", "ddim")),
        "solver name 'ddim' is registered twice: by plugin 'samplekit_builtin'",
    ),
    (
        "SDE name of a built-in",
        plugin(
            "bad",
            samplekit_register_solvers=registers("own_solver"),
            samplekit_register_sdes=lambda register: register("vp", dict),
        ),
        "sde name 'vp' is registered twice",
    ),
    (
        "hook raises",
        plugin("bad", samplekit_register_solvers=registers("own_solver"), samplekit_register_sdes=boom),
        "RuntimeError: this plugin's hook is broken",
    ),
    (
        "misspelt hook",
        plugin("bad", samplekit_register_solvers=registers("own_solver"), samplekit_register_solver=misspelt),
        "unknown hook 'samplekit_register_solver'",
    ),
    ("wrong hook argument", plugin("bad", samplekit_register_solvers=wrong_argument), "'reg'"),
    (
        "register misused",
        plugin("bad", samplekit_register_solvers=lambda register: register("x", sk.Solver)),
        "register(SolverClass)",
    ),
]


@pytest.mark.parametrize("case, bad, fragment", CASES, ids=[c[0] for c in CASES])
def test_a_broken_plugin_is_listed_as_failed_and_the_built_ins_keep_working(fresh_registry, case, bad, fragment):
    good = plugin("good", samplekit_register_solvers=registers("good_solver"))
    registry = fresh_registry(bad, good, builtins=(BUILTIN,))
    failed = {f.plugin: f.error for f in registry.failures}
    assert list(failed) == ["bad"], failed
    assert fragment in failed["bad"]
    assert "SAMPLEKIT_DISABLE_PLUGINS=samplekit_builtin" not in failed["bad"]
    plugins = {c.plugin for c in registry.available()}
    assert "bad" not in plugins and {BUILTIN, "good"} <= plugins  # none of its components, the rest all
    assert registry.get("solver", "ddim").plugin == BUILTIN
    assert registry.get("sde", "vp").plugin == BUILTIN
    assert registry.get("solver", "good_solver").plugin == "good"
    with pytest.raises(sk.UnknownComponentError, match="plugins that failed to load: bad"):
        registry.get("solver", "own_solver")


def test_a_duplicate_between_two_third_party_plugins_names_both_and_keeps_the_first(fresh_registry):
    first = plugin("first", samplekit_register_solvers=registers("shared", "only_first"))
    second = plugin("second", samplekit_register_solvers=registers("only_second", "shared"))
    registry = fresh_registry(first, second, builtins=(BUILTIN,))
    (failure,) = registry.failures
    assert failure.plugin == "second" and "'first'" in failure.error and "'second'" in failure.error
    assert "SAMPLEKIT_DISABLE_PLUGINS=second" in failure.error
    assert registry.get("solver", "shared").plugin == "first"
    with pytest.raises(sk.UnknownComponentError):
        registry.get("solver", "only_second")  # all or nothing


def test_a_duplicate_within_one_plugin_drops_that_plugin(fresh_registry):
    registry = fresh_registry(
        plugin("twice", samplekit_register_solvers=registers("a_solver", "a_solver")), builtins=(BUILTIN,)
    )
    assert [f.plugin for f in registry.failures] == ["twice"] and "'a_solver'" in registry.failures[0].error
    assert "twice" not in {c.plugin for c in registry.available()}


def test_sampling_works_beside_a_broken_plugin(fresh_registry, monkeypatch):
    import samplekit.plugins as plugins_module

    bad = plugin("bad", samplekit_register_solvers=registers("ddim"), samplekit_register_sdes=boom)
    registry = fresh_registry(bad, builtins=(BUILTIN,))
    monkeypatch.setattr(plugins_module, "_default_registry", registry)
    model = sk.GaussianMixture([1.0], [[0.0, 0.0]], [[[1.0, 0.0], [0.0, 1.0]]]).score_model(
        registry.create("sde", "vp")
    )
    res = sk.sample(model, solver="ddim", nfe=5, num_samples=4, progress=False)
    assert res.samples.shape == (4, 2) and res.solver == "ddim"


# --- commands added by plugins ---------------------------------------------------------------------
def _group_with(*plugins_and_hooks):
    """A fresh samplekit click group whose commands come from the core plus the given (name, hook) pairs."""
    from samplekit.cli import app

    group = app.SamplekitGroup(name="samplekit")
    core = __import__(app.CORE_COMMANDS, fromlist=["x"]).samplekit_register_commands
    original = app.command_hookimpls
    app.command_hookimpls = lambda: ([(app.CORE_COMMANDS, core), *plugins_and_hooks], [])
    try:
        group.load_commands()
    finally:
        app.command_hookimpls = original
    return group


def test_a_plugin_command_that_clashes_or_raises_is_dropped_and_the_core_commands_work():
    @click.command("sample")
    def impostor():
        """Not samplekit's sample."""

    @click.command("hello")
    def hello():
        """A plugin's own command."""
        click.echo("hello from the plugin")

    def clashing(cli):
        cli.add_command(hello)
        cli.add_command(impostor)

    def raising(cli):
        raise ImportError("missing optional dependency")

    group = _group_with(("clash", clashing), ("broken", raising), ("fine", lambda cli: cli.add_command(hello, "greet")))
    failed = {f.plugin: f.error for f in group.command_failures}
    assert set(failed) == {"clash", "broken"}
    assert "'sample' is added by plugin 'samplekit.cli.core' and by plugin 'clash'" in failed["clash"]
    assert "ImportError: missing optional dependency" in failed["broken"]
    assert group.commands["sample"].callback is not impostor.callback and "hello" not in group.commands
    result = CliRunner().invoke(group, ["greet"])
    assert result.exit_code == 0 and "hello from the plugin" in result.output
    listing = CliRunner().invoke(group, ["list", "sde", "--json"])
    assert listing.exit_code == 0
    assert {"clash", "broken"} <= {f["plugin"] for f in json.loads(listing.output)["failed_plugins"]}


# --- a broken plugin installed with pip ------------------------------------------------------------
BROKEN_PLUGIN = '''
"""A third-party plugin with three faults: a built-in's name, a misspelt hook, a hook that raises."""
import samplekit as sk
from samplekit.hookspecs import hookimpl


class Clash(sk.Solver):
    """Claims a built-in's name."""
    name = "ddim"


@hookimpl
def samplekit_register_solvers(register):
    register(Clash)
'''
MISSPELT_PLUGIN = """
from samplekit.hookspecs import hookimpl


@hookimpl
def samplekit_register_solver(register):
    pass
"""


def _wheel(directory: Path, dist: str, modules: dict[str, str], entry_points: dict[str, str]) -> Path:
    """A minimal pure-Python wheel (PEP 427) holding ``modules`` and a ``samplekit`` entry-point group."""
    info = f"{dist}-0.1.dist-info"
    files = {f"{m}.py": src for m, src in modules.items()}
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n"
    files[f"{info}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: samplekit-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    files[f"{info}/entry_points.txt"] = "[samplekit]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items())

    def record_line(name: str, data: bytes) -> str:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        return f"{name},sha256={digest},{len(data)}"

    record = [record_line(n, s.encode()) for n, s in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = "\n".join(record) + "\n"
    path = directory / f"{dist}-0.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
    return path


def test_a_broken_plugin_installed_with_pip_leaves_help_list_and_sampling_working(tmp_path):
    wheel = _wheel(
        tmp_path,
        "samplekit_broken",
        {"samplekit_broken": BROKEN_PLUGIN, "samplekit_misspelt": MISSPELT_PLUGIN},
        {"broken": "samplekit_broken", "misspelt": "samplekit_misspelt", "missing": "no_such_module_xyz"},
    )
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), *sys.path]))

    def run(*args):
        return subprocess.run(
            [sys.executable, *args], check=False, capture_output=True, text=True, env=env, timeout=300
        )

    help_ = run("-m", "samplekit", "--help")
    assert help_.returncode == 0 and "sample" in help_.stdout and "Traceback" not in help_.stderr
    # one process for the CLI's list (the real group, as the console script runs it) and then the API
    both = run(
        "-c",
        "import samplekit as sk; from samplekit.cli import cli; "
        "cli.main(['list', 'solver', '--json'], standalone_mode=False); "
        "m = sk.get_target('ring2d').model(sk.get_sde('vp')); "
        "r = sk.sample(m, solver='ddim', nfe=4, num_samples=3, progress=False); print('sampled', r.solver)",
    )
    assert both.returncode == 0 and "Traceback" not in both.stderr, both.stderr
    *listing, sampled = both.stdout.strip().splitlines()
    payload = json.loads("\n".join(listing))
    failed = {f["plugin"]: f["error"] for f in payload["failed_plugins"]}
    assert set(failed) == {"broken", "misspelt", "missing"}, failed
    assert "'ddim' is registered twice" in failed["broken"] and "samplekit_register_solver" in failed["misspelt"]
    assert "no_such_module_xyz" in failed["missing"]
    assert {("ddim", BUILTIN)} <= {(c["name"], c["plugin"]) for c in payload["components"]}
    assert sampled.strip() == "sampled ddim"
