"""The registry on pluggy: scoping by plugin, duplicates, unknown names, failed plugins, blocking."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import samplekit as sk
from samplekit import hookspecs
from samplekit.hookspecs import hookimpl
from samplekit.registry import DuplicateComponentError, Registry, UnknownComponentError

PLUGINS_DIR = __import__("pathlib").Path(__file__).resolve().parents[1] / "plugins"


def make_plugin(name: str, **hooks) -> types.ModuleType:
    """An inline plugin module whose hook functions are given by keyword (hook name without the prefix)."""
    module = types.ModuleType(name)
    for hook, fn in hooks.items():
        setattr(module, f"samplekit_register_{hook}", hookimpl(fn))
    return module


def solver_class(solver_name: str, doc: str = "", aliases: tuple[str, ...] = ()) -> type:
    """A Solver subclass declaring only its name (and aliases): registration reads them from the class."""
    return type(solver_name, (sk.Solver,), {"name": solver_name, "__doc__": doc or solver_name, "aliases": aliases})


def solver_plugin(name: str, *solver_names: str) -> types.ModuleType:
    def register_solvers(register):
        for s in solver_names:
            register(solver_class(s, f"{s} from {name}"))

    return make_plugin(name, solvers=register_solvers)


def test_components_remember_their_plugin(fresh_registry):
    reg = fresh_registry(solver_plugin("alpha", "a1", "a2"), solver_plugin("beta", "b1"))
    got = {(c.name, c.plugin) for c in reg.available("solver")}
    assert got == {("a1", "alpha"), ("a2", "alpha"), ("b1", "beta")}
    assert reg.get("solver", "b1").summary == "b1 from beta"


def test_duplicate_name_names_both_plugins(fresh_registry):
    reg = fresh_registry(solver_plugin("alpha", "same"), solver_plugin("beta", "same"))
    (failure,) = reg.failures  # the second plugin is dropped and reported, naming both
    assert failure.plugin == "beta" and "DuplicateComponentError" in failure.error
    assert "'alpha'" in failure.error and "'beta'" in failure.error and "'same'" in failure.error
    assert reg.get("solver", "same").plugin == "alpha"


def test_unknown_name_lists_close_names(fresh_registry):
    reg = fresh_registry(solver_plugin("alpha", "ode_heun", "ode_euler", "ddim"))
    with pytest.raises(UnknownComponentError) as err:
        reg.get("solver", "ode_huen")
    message = str(err.value)
    assert "did you mean 'ode_heun'" in message and "ddim" in message


def test_unknown_kind_is_an_error():
    with pytest.raises(ValueError, match="kind='solvers'"):
        Registry().available("solvers")


def test_plugin_that_fails_to_import_is_reported_and_others_work(fresh_registry):
    reg = fresh_registry(solver_plugin("alpha", "a1"), builtins=("samplekit_no_such_plugin_xyz",))
    assert [f.plugin for f in reg.failures] == ["samplekit_no_such_plugin_xyz"]
    assert "ModuleNotFoundError" in reg.failures[0].error
    assert reg.get("solver", "a1").plugin == "alpha"
    with pytest.raises(UnknownComponentError, match="failed to load: samplekit_no_such_plugin_xyz"):
        reg.get("solver", "zzz")


def test_disable_plugins_environment_variable(fresh_registry, monkeypatch):
    monkeypatch.setenv("SAMPLEKIT_DISABLE_PLUGINS", "samplekit_builtin")
    reg = fresh_registry(solver_plugin("alpha", "a1"), builtins=("samplekit_builtin",))
    assert reg.available("sde") == []
    assert [c.name for c in reg.available("solver")] == ["a1"]


def test_builtin_plugin_registers_sdes_and_euler_maruyama(fresh_registry):
    reg = fresh_registry(builtins=("samplekit_builtin",))
    assert {c.name for c in reg.available("sde")} >= {"vp", "subvp", "ve", "ou", "edm"}
    em = reg.get("solver", "euler_maruyama")
    assert em.plugin == "samplekit_builtin" and em.info["stochastic"] is True


def test_example_plugin_registers_in_process(fresh_registry, monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS_DIR / "example_plugin"))
    import samplekit_example

    reg = fresh_registry(samplekit_example, builtins=("samplekit_builtin",))
    info = reg.get("solver", "example_midpoint")
    assert info.plugin == "samplekit_example"
    # and the solver it contributes really runs: a 2nd-order ODE solver on an exact Gaussian target
    target = sk.GaussianMixture([1.0], [[1.0, -1.0]], [[0.5, 2.0]])
    model = target.score_model(sk.VPSDE())
    import torch

    res = sk.sample(
        model, solver=info.factory(), nfe=200, num_samples=4000, seed=0, dtype=torch.float64, progress=False
    )
    assert res.nfe == 200
    assert torch.allclose(res.samples.mean(0), target.mean, atol=0.1)
    assert torch.allclose(res.samples.var(0), torch.tensor([0.5, 2.0], dtype=torch.float64), rtol=0.1)


def test_every_hook_is_documented_and_exercised(fresh_registry):
    """Meta test (as datasette's): each register hook has a docstring and a kind the registry accepts."""
    reg = Registry()
    for kind, hook_name in hookspecs.REGISTER_HOOKS.items():
        spec = getattr(hookspecs, hook_name)
        assert spec.__doc__ and "register" in spec.__doc__

        def hook(register, kind=kind):
            if kind == "solver":
                register(solver_class(f"x_{kind}"))
            else:
                register(f"x_{kind}", dict)

        plugin = make_plugin(f"p_{kind}", **{hook_name.removeprefix("samplekit_register_"): hook})
        built = fresh_registry(plugin)
        assert [c.name for c in built.available(kind)] == [f"x_{kind}"]
        reg.add(kind, "x", dict, "p")
    assert hookspecs.samplekit_register_commands.__doc__
    assert set(hookspecs.__all__) >= set(hookspecs.REGISTER_HOOKS.values()) | {"samplekit_register_commands"}


names = st.text(alphabet="abcdefghij_", min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["p1", "p2", "p3"]), names), max_size=12))
def test_registry_property_no_silent_overwrite(entries):
    """Every name registered once is found with its plugin; a second registration always raises."""
    reg = Registry()
    first: dict[str, str] = {}
    for plugin, name in entries:
        if name in first:
            with pytest.raises(DuplicateComponentError):
                reg.add("solver", name, dict, plugin)
        else:
            reg.add("solver", name, dict, plugin)
            first[name] = plugin
    assert [c.name for c in reg.available("solver")] == sorted(first)
    for name, plugin in first.items():
        assert reg.get("solver", name).plugin == plugin


def test_cli_list_json_shows_sdes_and_euler_maruyama():
    out = subprocess.run(
        [sys.executable, "-m", "samplekit", "list", "--json"], capture_output=True, text=True, check=True
    ).stdout
    rows = json.loads(out)["components"]
    pairs = {(r["kind"], r["name"], r["plugin"]) for r in rows}
    assert ("solver", "euler_maruyama", "samplekit_builtin") in pairs
    assert {("sde", n, "samplekit_builtin") for n in ["vp", "subvp", "ve", "ou", "edm"]} <= pairs


# --- solver registration from the class (the single source of its capabilities) --------------------


def test_solver_is_registered_from_its_class_with_aliases(fresh_registry):
    cls = solver_class("alpha_solver", aliases=("sample_alpha", "AlphaScheduler"))
    reg = fresh_registry(make_plugin("alpha", solvers=lambda register: register(cls)))
    info = reg.get("solver", "AlphaScheduler")
    assert (
        info.name == "alpha_solver"
        and info.factory is cls
        and info.info["aliases"] == ["sample_alpha", "AlphaScheduler"]
    )
    assert reg.get("solver", "sample_alpha") is info
    assert info.info["order"] == sk.Solver.order and info.info["nfe_per_step"] == 1


def test_alias_clashing_with_another_solver_names_both_plugins(fresh_registry):
    first = solver_class("one", aliases=("shared",))
    second = solver_class("shared")
    reg = fresh_registry(
        make_plugin("a", solvers=lambda register: register(first)),
        make_plugin("b", solvers=lambda register: register(second)),
    )
    assert [f.plugin for f in reg.failures] == ["b"] and re.search("'a'.*'b'", reg.failures[0].error)


def test_registering_a_solver_by_name_is_a_clear_error(fresh_registry):
    reg = fresh_registry(make_plugin("old", solvers=lambda register: register("x", sk.Solver)))
    assert [f.plugin for f in reg.failures] == ["old"] and "register(SolverClass)" in reg.failures[0].error


@pytest.mark.parametrize(
    "name, options, field, value",
    [
        ("unipc", {}, "order", 3.0),
        ("unipc", {"solver_order": 1}, "order", 2.0),
        ("unipc", {"solver_order": 3}, "order", 4.0),
        ("unipc", {"solver_order": 2, "corrector": False}, "order", 2.0),
        ("ddim", {}, "stochastic", False),
        ("ddim", {"eta": 0.5}, "stochastic", True),
        ("pc", {"n_corrector": 3}, "nfe_per_step", 4),
        ("edm_heun", {"S_churn": 5.0}, "stochastic", True),
    ],
)
def test_capabilities_describe_the_instance(name, options, field, value):
    assert getattr(sk.get_solver(name, **options).capabilities(), field) == value


def test_listing_is_the_default_instance_and_the_typed_options():
    info = {c.name: c for c in sk.available("solver")}
    for c in info.values():
        assert c.info["order"] == c.factory().capabilities().order, c.name
    ddim = info["ddim"].info["options"]
    assert ddim["eta"] == {"type": "a float", "default": 0.0, "range": ">= 0 and <= 1"}
    assert ddim["denoise_final"]["type"] == "a bool"


@pytest.mark.parametrize("value", ["False", 1, None, 0.0])
def test_a_bool_option_refuses_a_non_bool(value):
    with pytest.raises(sk.SolverError, match="denoise_final=.* must be a bool"):
        sk.get_solver("ddim", denoise_final=value)


@pytest.mark.parametrize("text, expected", [("False", False), ("true", True), ("0", False), ("YES", True)])
def test_cli_option_text_is_parsed_against_the_declared_type(text, expected):
    from samplekit.api import solver_options_from_text

    assert solver_options_from_text("ddim", [f"denoise_final={text}", "eta=0.25"]) == {
        "denoise_final": expected,
        "eta": 0.25,
    }


@pytest.mark.parametrize(
    "pairs, fragment",
    [
        (["eta=abc"], "eta='abc' is not a float"),
        (["denoise_final=maybe"], "is not a bool"),
        (["bogus=1"], "has no option 'bogus'"),
        (["eta"], "is not KEY=VALUE"),
    ],
)
def test_cli_option_text_errors_name_the_option(pairs, fragment):
    from samplekit.api import solver_options_from_text
    from samplekit.options import OptionError

    with pytest.raises(OptionError, match=fragment):
        solver_options_from_text("ddim", pairs)


def test_every_alias_builds_its_solver_and_no_alias_is_shared():
    """``samplekit list solver --json`` gives each solver's peer names, and sk.sample accepts them."""
    seen: dict[str, str] = {}
    for c in sk.available("solver"):
        for alias in c.info["aliases"]:
            assert alias not in seen, f"alias {alias!r} of {c.name} is also {seen[alias]}'s"
            seen[alias] = c.name
            assert type(sk.get_solver(alias)) is c.factory
    assert {"sample_euler_ancestral", "DPMSolverMultistepScheduler", "sample_heun", "DDIMScheduler"} <= set(seen)
