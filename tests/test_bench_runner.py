"""The benchmark harness: resume after a crash, failure and skipped cells, corrupt results files,
names checked before work, adaptive tolerance sweeps, the table, a user's own model as target."""

from __future__ import annotations

import json
import math
import re
import types

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import samplekit as sk
from samplekit.bench.harness import run_suite
from samplekit.bench.store import CorruptResultsError
from samplekit.bench.suite import SuiteError, suite_from_dict
from samplekit.hookspecs import hookimpl
from samplekit.reverse import probability_flow_drift
from samplekit.solver import Plan, Solver
from samplekit.targets import ExactTarget, ring2d
from samplekit_builtin.euler_maruyama import EulerMaruyama

CALLS = {"counted_em": 0}
CRASH = {"on": False}


class CountedEM(EulerMaruyama):
    """Euler-Maruyama that counts the runs it starts."""

    name = "counted_em"

    def init(self, model, x, ts, noise, plan):
        CALLS["counted_em"] += 1


class Crasher(EulerMaruyama):
    """Simulates Ctrl-C (or a crash) in the middle of a run when CRASH['on']."""

    name = "crasher"

    def init(self, model, x, ts, noise, plan):
        if CRASH["on"]:
            raise KeyboardInterrupt


class Boom(EulerMaruyama):
    name = "boom"

    def step(self, model, i, t0, t1, x, state, noise, plan):
        raise RuntimeError("kaboom")


class NaNSolver(EulerMaruyama):
    name = "nan_solver"

    def step(self, model, i, t0, t1, x, state, noise, plan):
        x, state, den = super().step(model, i, t0, t1, x, state, noise, plan)
        return x * float("nan"), state, den


class NeedsFour(EulerMaruyama):
    name = "needs_four"
    min_steps = 4


class VEOnly(EulerMaruyama):
    name = "ve_only"
    sde_families = ("ve",)


class Overspender(EulerMaruyama):
    name = "overspender"

    def plan(self, nfe, calls_per_eval=1):
        return Plan(nfe + 2, nfe, calls_per_eval)


class ToyAdaptive(Solver):
    """Probability-flow Euler with ceil(0.5 / rtol) steps: a stand-in for a tolerance-driven solver."""

    name = "toy_adaptive"
    adaptive = True

    def __init__(self, *, rtol: float = 1e-2, atol: float = 1e-2, **common):
        super().__init__(**common)
        self.rtol, self.atol = rtol, atol

    def solve(self, model, x, noise, plan, on_step):
        n = math.ceil(0.5 / self.rtol)
        ts = torch.linspace(model.sde.T, model.sde.t_min, n + 1, dtype=torch.float64)
        for t0, t1 in zip(ts[:-1], ts[1:]):
            x = x - (t0 - t1) * probability_flow_drift(model, x, t0)[0]
        return x


SOLVERS = (CountedEM, Crasher, Boom, NaNSolver, NeedsFour, VEOnly, Overspender, ToyAdaptive)


def toy_plugin():
    module = types.ModuleType("toy_bench_plugin")

    def register_solvers(register):
        for cls in SOLVERS:
            register(cls)

    module.samplekit_register_solvers = hookimpl(register_solvers)
    return module


@pytest.fixture
def registry(fresh_registry):
    CALLS["counted_em"], CRASH["on"] = 0, False
    return fresh_registry(toy_plugin(), builtins=("samplekit_builtin",))


def make_suite(**kw):
    base = dict(
        name="t",
        targets=["ring2d"],
        solvers=["counted_em"],
        nfe=[2, 8],
        seeds=[0, 1],
        num_samples=200,
        metrics=["sliced_w2", "mmd", "logp_gap"],
    )
    return suite_from_dict({**base, **kw})


def read_lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def run(suite, out, registry, **kw):
    return run_suite(suite, out, registry, progress=False, make_plots=False, **kw)


def test_resume_after_a_crash_loses_nothing_finished_and_redoes_nothing(tmp_path, registry):
    suite = make_suite(solvers=["counted_em", "crasher"])
    CRASH["on"] = True
    with pytest.raises(KeyboardInterrupt):
        run(suite, tmp_path / "a", registry)
    lines = read_lines(tmp_path / "a" / "results.jsonl")  # every line whole and parseable
    assert [r["kind"] for r in lines] == ["floor"] * 2 + ["cell"] * 4
    assert all(r["solver"] == "counted_em" and r["status"] == "ok" for r in lines[2:])
    assert CALLS["counted_em"] == 4

    CRASH["on"] = False
    outcome = run(suite, tmp_path / "a", registry)
    assert outcome.counts == {"ok": 4, "failed": 0, "skipped": 0, "already_done": 6}
    assert CALLS["counted_em"] == 4  # finished cells were not rerun

    clean = run(suite, tmp_path / "b", registry)  # an uninterrupted run gives the same results
    assert CALLS["counted_em"] == 8
    for key, rec in clean.records.items():
        assert outcome.records[key]["metrics"] == rec["metrics"]
        assert outcome.records[key].get("nfe_spent") == rec.get("nfe_spent")


def test_failed_and_skipped_cells_are_recorded_and_the_run_goes_on(tmp_path, registry):
    suite = make_suite(solvers=["boom", "nan_solver", "needs_four", "ve_only", "overspender", "counted_em"], seeds=[0])
    outcome = run(suite, tmp_path, registry)
    by = {(r["solver"], r["nfe"]): r for r in outcome.records.values() if r["kind"] == "cell"}
    for nfe in (2, 8):
        assert by[("boom", nfe)]["status"] == "failed" and "RuntimeError: kaboom" in by[("boom", nfe)]["error"]
        assert by[("nan_solver", nfe)]["status"] == "failed" and "NaN" in by[("nan_solver", nfe)]["error"]
        assert by[("ve_only", nfe)]["status"] == "skipped" and "does not support" in by[("ve_only", nfe)]["reason"]
        assert by[("overspender", nfe)]["status"] == "failed"
        assert f"would exceed max_nfe={nfe}" in by[("overspender", nfe)]["error"]  # the core's meter stops it
        assert by[("counted_em", nfe)]["status"] == "ok" and by[("counted_em", nfe)]["nfe_spent"] == nfe
    assert by[("needs_four", 2)]["status"] == "skipped" and "nfe=2 is too small" in by[("needs_four", 2)]["reason"]
    assert by[("needs_four", 8)]["status"] == "ok"
    assert outcome.counts == {"ok": 4, "failed": 6, "skipped": 3, "already_done": 0}  # ok: the floor too
    table = (tmp_path / "table.md").read_text()
    assert re.search(r"\| boom \| toy_bench_plugin \| fail \| fail \|", table)
    assert re.search(r"\| ve_only \| toy_bench_plugin \| skip \| skip \|", table)
    assert "kaboom" in table and "too small" in table

    again = run(suite, tmp_path, registry)
    assert again.counts["already_done"] == len(outcome.cells)
    retried = run(suite, tmp_path, registry, retry_failed=True)
    assert retried.counts["failed"] == 6 and retried.counts["ok"] == 0


def test_the_table_marks_the_best_of_each_column_and_shows_the_floor(tmp_path, registry):
    suite = make_suite(solvers=["counted_em", "needs_four", {"name": "euler_maruyama", "label": "em"}], seeds=[0])
    outcome = run(suite, tmp_path, registry)
    table = (tmp_path / "table.md").read_text()
    col8 = {
        r["label"]: r["metrics"]["sliced_w2"] for r in outcome.records.values() if r["kind"] == "cell" and r["nfe"] == 8
    }
    best = min(col8, key=col8.get)
    row = next(line for line in table.splitlines() if line.startswith(f"| {best} |"))
    cell = row.split("|")[4].strip()  # value ±95% half-width (rank 1), in bold
    assert cell.startswith(f"**{col8[best]:.3g} ±") and cell.endswith(" (1)**")
    assert table.count("**") >= 4  # one best per column of the headline table
    floor = next(r for r in outcome.records.values() if r["kind"] == "floor")["metrics"]["sliced_w2"]
    assert f"| *noise floor* | | *{floor:.3g}* | *{floor:.3g}* |" in table


def test_a_corrupt_results_file_is_refused_and_left_untouched(tmp_path, registry):
    suite = make_suite()
    run(suite, tmp_path, registry)
    path = tmp_path / "results.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    # a bad line followed by others (a torn *last* line is dropped instead: see test_bench_robust.py)
    for bad in (path.read_bytes() + b"{not json\n", b"".join(lines[:2] + [lines[2][:-20] + b"\n"] + lines[3:])):
        path.write_bytes(bad)
        (tmp_path / "table.md").unlink(missing_ok=True)
        with pytest.raises(CorruptResultsError, match=r"line \d+ is corrupt.*untouched"):
            run(suite, tmp_path, registry)
        assert path.read_bytes() == bad
        assert not (tmp_path / "table.md").exists()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"solvers": ["counted_emm"]}, "did you mean 'counted_em'"),
        ({"targets": ["ring3d"]}, "unknown target 'ring3d'"),
        ({"metrics": ["sliced_w3"]}, "unknown metric 'sliced_w3'"),
        ({"sdes": ["vpp"]}, "unknown sde 'vpp'"),
        ({"solvers": [{"name": "counted_em", "options": {"eta": 1}}]}, "has no option 'eta'"),
        ({"solvers": [{"name": "counted_em", "tolerances": [0.1]}]}, "not adaptive"),
    ],
)
def test_bad_names_and_options_fail_before_any_work(tmp_path, registry, change, message):
    with pytest.raises((sk.SamplekitError, ValueError), match=message):
        run(make_suite(**change), tmp_path / "out", registry)
    assert not (tmp_path / "out").exists() and CALLS["counted_em"] == 0


def test_suite_files_are_checked(tmp_path):
    with pytest.raises(SuiteError, match="unknown key"):
        make_suite(nfes=[1])
    with pytest.raises(SuiteError, match="positive integers"):
        make_suite(nfe=[0, 5])
    with pytest.raises(SuiteError, match="appear twice"):
        make_suite(solvers=["counted_em", "counted_em"])


def test_adaptive_solvers_sweep_tolerances_and_report_their_real_nfe(tmp_path, registry):
    suite = make_suite(solvers=["toy_adaptive", "counted_em"], tolerances=[0.25, 0.1, 0.05], nfe=[4, 8, 16], seeds=[0])
    outcome = run(suite, tmp_path, registry)
    spent = {r["tol"]: r["nfe_spent"] for r in outcome.records.values() if r.get("solver") == "toy_adaptive"}
    assert spent == {0.25: 2, 0.1: 5, 0.05: 10}  # counted, not assumed
    row = next(
        line
        for line in (tmp_path / "table.md").read_text().splitlines()
        if line.startswith("| toy_adaptive (adaptive) |")
    )
    cells = [re.sub(r" \(\d+\)$", "", c.strip().strip("*")) for c in row.split("|")[3:6]]  # drop the rank
    assert cells[0].endswith("@2") and cells[1].endswith("@5") and cells[2].endswith(("@5", "@10"))


def loader_plugin(sde):
    """A model loader reading a Gaussian mixture's parameters from an .npz file."""
    module = types.ModuleType("toy_loader_plugin")

    def register_model_loaders(register):
        def load(path):
            p = np.load(path)
            return sk.GaussianMixture(p["weights"], p["means"], p["covs"]).score_model(sde)

        register("toy_npz", load)

    module.samplekit_register_model_loaders = hookimpl(register_model_loaders)
    return module


def test_a_users_own_model_with_a_reference_file(tmp_path, fresh_registry):
    from samplekit.bench.targets import user_model_target

    registry = fresh_registry(loader_plugin(sk.VESDE()), builtins=("samplekit_builtin",))
    mix = ring2d()
    np.savez(tmp_path / "mine.npz", weights=mix.weights.numpy(), means=mix.means.numpy(), covs=mix.covariances.numpy())
    np.savez(tmp_path / "data.npz", samples=mix.sample(1000, torch.Generator().manual_seed(3)).numpy())
    model = registry.get("model_loader", "toy_npz").factory(str(tmp_path / "mine.npz"))
    target = user_model_target("mine", model, str(tmp_path / "data.npz"))
    suite = make_suite(targets=["mine"], solvers=["euler_maruyama"], nfe=[100], seeds=[0], num_samples=400)
    outcome = run(suite, tmp_path / "out", registry, extra_targets={"mine": target})
    cell = next(r for r in outcome.records.values() if r["kind"] == "cell")
    floor = next(r for r in outcome.records.values() if r["kind"] == "floor")
    assert cell["sde"] == "ve" and cell["status"] == "ok"  # the model's own SDE, not the suite's vp
    assert cell["metrics"]["logp_gap"] is None  # no exact density for a user's model
    assert cell["metrics"]["sliced_w2"] < 3 * floor["metrics"]["sliced_w2"]
    with pytest.raises(SuiteError, match="too many"):
        run(
            make_suite(targets=["mine"], solvers=["euler_maruyama"], num_samples=600),
            tmp_path / "x",
            registry,
            extra_targets={"mine": target},
        )


def test_a_target_can_restrict_its_sdes(tmp_path, registry):
    target = ExactTarget("ring_ve", ring2d())
    target.sde_names = ("ve",)
    suite = make_suite(targets=["ring_ve"], sdes=["vp", "ve"], seeds=[0], nfe=[4])
    outcome = run(suite, tmp_path, registry, extra_targets={"ring_ve": target})
    assert {r["sde"] for r in outcome.records.values() if r["kind"] == "cell"} == {"ve"}


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from("abcde"),
            st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20)),
        ),
        max_size=12,
    )
)
def test_the_store_reads_back_what_it_wrote_last_record_of_a_key_winning(tmp_path_factory, entries):
    from samplekit.bench.store import ResultsStore

    path = tmp_path_factory.mktemp("store") / "results.jsonl"
    expected = {}
    with ResultsStore(path) as store:
        for key, value in entries:
            store.append({"key": key, "status": "skipped", "reason": "r", "value": value})
            expected[key] = {"key": key, "status": "skipped", "reason": "r", "value": value}
    assert ResultsStore(path).load() == expected


def test_a_broken_target_fails_its_own_cells_and_the_others_run(tmp_path, registry):
    class Broken(ExactTarget):
        def model(self, sde):
            raise OSError("weights file missing")

        def reference(self, n, seed=0):
            raise OSError("data file missing")

    suite = make_suite(targets=["broken", "ring2d"], seeds=[0], nfe=[4])
    outcome = run(suite, tmp_path, registry, extra_targets={"broken": Broken("broken", ring2d())})
    status = {(r["target"], r["kind"]): (r["status"], r.get("error", "")) for r in outcome.records.values()}
    assert status[("broken", "floor")][0] == "failed" and "data file missing" in status[("broken", "floor")][1]
    assert status[("broken", "cell")][0] == "failed" and "weights file missing" in status[("broken", "cell")][1]
    assert status[("ring2d", "floor")][0] == status[("ring2d", "cell")][0] == "ok"


def test_the_floor_averages_independent_sets_against_the_cells_reference(tmp_path, registry):
    from samplekit.bench.metrics import sliced_wasserstein
    from samplekit.bench.runner import FLOOR_REPEAT_STRIDE
    from samplekit.bench.targets import floor_set, reference_set

    outcome = run(make_suite(seeds=[1], nfe=[2]), tmp_path, registry)
    floor = next(r for r in outcome.records.values() if r["kind"] == "floor")
    target = ExactTarget("ring2d", ring2d())
    ref = reference_set(target, 200, 1)
    sets = [floor_set(target, 200, 1 + FLOOR_REPEAT_STRIDE * k) for k in range(floor["repeats"])]
    each = [sliced_wasserstein(s, ref) for s in sets]
    assert floor["repeats"] == 4 and len({round(v, 12) for v in each}) == 4  # four different sets
    assert floor["metrics"]["sliced_w2"] == pytest.approx(sum(each) / 4, rel=1e-9)
