"""The command line: list (text and JSON) and sample (writes .npz)."""

from __future__ import annotations

import json

import numpy as np
import torch
from click.testing import CliRunner

from samplekit.bench.metrics import sliced_wasserstein
from samplekit.cli import cli
from samplekit.targets import ring2d


def test_list_kind_json_has_kind_name_plugin():
    result = CliRunner().invoke(cli, ["list", "sde", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["components"]
    assert {r["name"] for r in rows} >= {"vp", "subvp", "ve", "ou", "edm"}
    assert all(r["kind"] == "sde" and r["plugin"] for r in rows)


def test_list_text_groups_by_kind():
    result = CliRunner().invoke(cli, ["list"])
    assert result.exit_code == 0
    assert "euler_maruyama" in result.output and "samplekit_builtin" in result.output


def test_sample_writes_npz_of_the_target(tmp_path):
    out = tmp_path / "ring.npz"
    result = CliRunner().invoke(cli, ["sample", "--target", "ring2d", "--sde", "vp", "--nfe", "200", "-n", "2000",
                                      "--seed", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = np.load(out)
    x = torch.from_numpy(data["samples"]).double()
    assert x.shape == (2000, 2) and int(data["nfe"]) == 200
    g = torch.Generator().manual_seed(0)
    floor = sliced_wasserstein(ring2d().sample(2000, g), ring2d().sample(2000, g))
    assert sliced_wasserstein(x, ring2d().sample(2000, g)) < 2.5 * floor


def test_sample_rejects_unknown_solver_with_close_names(tmp_path):
    result = CliRunner().invoke(cli, ["sample", "--solver", "euler_maruyam", "--out", str(tmp_path / "x.npz")])
    assert result.exit_code != 0
    assert result.exit_code == 2 and "did you mean 'euler_maruyama'" in result.output and "Traceback" not in result.output
