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
    result = CliRunner().invoke(
        cli,
        ["sample", "--target", "ring2d", "--sde", "vp", "--nfe", "200", "-n", "2000", "--seed", "1", "--out", str(out)],
    )
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
    assert (
        result.exit_code == 2 and "did you mean 'euler_maruyama'" in result.output and "Traceback" not in result.output
    )


# --- outputs, loader flags, --cond/--init/--ts, batches and per-sample seeds ---------------------------
def run(*args):
    return CliRunner().invoke(cli, ["sample", *map(str, args)])


def test_outputs_are_checked_before_sampling_and_the_written_path_is_reported(tmp_path):
    huge = ["-n", 10**7, "--nfe", 10**4]  # would take hours if sampling came first
    missing = run(*huge, "--out", tmp_path / "missing_dir" / "a.npz")
    assert missing.exit_code == 2 and "does not exist; create it first" in missing.output
    suffix = run(*huge, "--out", tmp_path / "keep.txt")
    assert suffix.exit_code == 2 and "written as .npz" in suffix.output and not (tmp_path / "keep.txt.npz").exists()
    into_dir = run("-n", 5, "--nfe", 3, "--out", tmp_path / "run1")
    assert into_dir.exit_code == 0 and f"to {tmp_path / 'run1' / 'samples.npz'}" in into_dir.output
    first = np.load(tmp_path / "run1" / "samples.npz")["samples"]
    again = run(*huge, "--out", tmp_path / "run1" / "samples.npz")
    assert again.exit_code == 2 and "exists; pass --force to overwrite it" in again.output
    forced = run("-n", 5, "--nfe", 3, "--seed", 9, "--out", tmp_path / "run1", "--force")
    assert forced.exit_code == 0 and not np.array_equal(np.load(tmp_path / "run1" / "samples.npz")["samples"], first)
    assert [p.name for p in (tmp_path / "run1").iterdir()] == ["samples.npz"]  # no temporary left behind


def test_a_shipped_model_samples_under_its_own_sde_only(tmp_path):
    wrong = run("--model", "ring2d_mlp", "--sde", "ve", "-n", 4, "--nfe", 3, "--out", tmp_path / "a.npz")
    assert wrong.exit_code == 2 and "--sde ve conflicts" in wrong.output and "'vp'" in wrong.output
    same = run("--model", "ring2d_mlp", "--sde", "vp", "-n", 4, "--nfe", 3, "--out", tmp_path / "b.npz")
    assert same.exit_code == 0, same.output
    shape = run("--model", "ring2d_mlp", "--shape", "2", "--out", tmp_path / "c.npz")
    assert shape.exit_code == 2 and "--shape does not apply" in shape.output


class OffsetNet(torch.nn.Module):
    """eps(x, t) = 0.1 x + offset (a per-sample network input)."""

    def forward(self, x, t, offset: torch.Tensor):
        return 0.1 * x + offset.to(x.dtype).reshape(-1, 1)


def test_torch_loader_flags_trust_code_and_cond_match_the_api(tmp_path):
    import samplekit as sk

    torch.jit.script(OffsetNet()).save(str(tmp_path / "net.ts"))
    offsets = np.arange(4, dtype=np.float32)
    np.savez(tmp_path / "cond.npz", offset=offsets)
    args = [
        "--model",
        tmp_path / "net.ts",
        "--loader",
        "torch",
        "--parametrization",
        "eps",
        "--sde",
        "ve",
        "--shape",
        "2",
        "--cond",
        tmp_path / "cond.npz",
        "--solver",
        "ode_heun",
        "--nfe",
        6,
        "-n",
        4,
        "--seed",
        3,
    ]
    refused = run(*args, "--out", tmp_path / "a.npz")
    assert refused.exit_code == 2 and "TorchScript archive" in refused.output and "--trust-code" in refused.output
    ok = run(*args, "--trust-code", "--out", tmp_path / "a.npz")
    assert ok.exit_code == 0, ok.output
    model = sk.load_model(
        tmp_path / "net.ts", loader="torch", parametrization="eps", sde="ve", shape=(2,), trust_code=True
    )
    api = sk.sample(
        model.condition(offset=torch.from_numpy(offsets)), "ode_heun", nfe=6, num_samples=4, seed=3, progress=False
    )
    assert np.array_equal(np.load(tmp_path / "a.npz")["samples"], api.samples.numpy())


def test_ts_and_init_strength_match_the_api(tmp_path):
    import samplekit as sk

    grid = np.array([1.0, 0.6, 0.3, 0.1, 1e-3])
    np.save(tmp_path / "ts.npy", grid)
    start = np.random.default_rng(0).normal(size=(5, 2)).astype(np.float32)
    np.save(tmp_path / "x.npy", start)
    model = sk.get_target("ring2d").model(sk.get_sde("vp"))
    by_grid = run("--solver", "ode_heun", "--ts", tmp_path / "ts.npy", "-n", 5, "--seed", 1, "--out", tmp_path / "g")
    assert by_grid.exit_code == 0, by_grid.output
    api = sk.sample(model, "ode_heun", ts=torch.from_numpy(grid), num_samples=5, seed=1, progress=False)
    assert np.array_equal(np.load(tmp_path / "g" / "samples.npz")["samples"], api.samples.numpy())
    img2img = run(
        "--solver",
        "ddim",
        "--nfe",
        4,
        "--init",
        tmp_path / "x.npy",
        "--strength",
        0.5,
        "-n",
        5,
        "--seed",
        2,
        "--out",
        tmp_path / "i.npz",
    )
    assert img2img.exit_code == 0, img2img.output
    api = sk.sample(
        model, "ddim", nfe=4, x_start=torch.from_numpy(start), t_start=0.5 * model.sde.T, seed=2, progress=False
    )
    assert np.array_equal(np.load(tmp_path / "i.npz")["samples"], api.samples.numpy())
    alone = run("--init", tmp_path / "x.npy", "--out", tmp_path / "j.npz")
    assert alone.exit_code == 2 and "--init and --strength go together" in alone.output


def test_per_sample_seeds_make_each_sample_independent_of_n_and_batch_size(tmp_path):
    common = ["--solver", "euler_maruyama", "--nfe", 5, "--per-sample-seeds"]
    whole = run(*common, "-n", 6, "--out", tmp_path / "whole.npz")
    batched = run(*common, "-n", 6, "--batch-size", 4, "--out", tmp_path / "batched.npz")
    single = run(*common, "-n", 1, "--seed", 4, "--out", tmp_path / "single.npz")
    assert whole.exit_code == batched.exit_code == single.exit_code == 0, (whole.output, batched.output)
    x = np.load(tmp_path / "whole.npz")["samples"]
    assert np.array_equal(np.load(tmp_path / "batched.npz")["samples"], x)
    assert np.array_equal(np.load(tmp_path / "single.npz")["samples"][0], x[4])
    assert list(np.load(tmp_path / "whole.npz")["seed"]) == [0, 1, 2, 3, 4, 5]


def test_help_imports_neither_torch_nor_the_solver_plugins():
    import subprocess
    import sys

    code = (
        "import sys; from samplekit.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'samplekit_builtin') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "sample" in out.stdout and "likelihood" in out.stdout, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_bool_option_text_is_parsed_against_the_declared_type(tmp_path):
    """--option denoise_final=false used to arrive as the truthy string "False"."""
    outs = {}
    for text in ("false", "False", "true"):
        result = run(
            "--solver",
            "ddim",
            "--nfe",
            4,
            "-n",
            5,
            "--option",
            f"denoise_final={text}",
            "--out",
            tmp_path / f"{text}.npz",
        )
        assert result.exit_code == 0, result.output
        outs[text] = np.load(tmp_path / f"{text}.npz")["samples"]
    assert np.array_equal(outs["false"], outs["False"]) and not np.array_equal(outs["false"], outs["true"])


def test_class_on_a_loaded_conditional_network_is_cfg_on_that_one_network(tmp_path):
    """--class/--guidance on a class-conditional diffusers UNet: the API's classifier_free on one network
    (null label = the last row of the class-embedding table), one batched call of 2B per evaluation."""
    from diffusers import DDPMScheduler

    import samplekit as sk
    from diffusers_tiny import class_unet

    class_unet(num_classes=4).save_pretrained(tmp_path / "unet")
    DDPMScheduler(num_train_timesteps=100).save_pretrained(tmp_path / "unet")
    args = [
        "--model",
        tmp_path / "unet",
        "--solver",
        "ddim",
        "--nfe",
        3,
        "-n",
        2,
        "--seed",
        5,
        "--class",
        1,
        "--guidance",
        2.5,
        "--option",
        "schedule=discrete",
    ]
    result = run(*args, "--out", tmp_path / "cfg.npz")
    assert result.exit_code == 0, result.output
    model = sk.load_model(tmp_path / "unet")
    batches = []
    model.net.module.register_forward_pre_hook(lambda module, a, kw: batches.append(a[0].shape[0]), with_kwargs=True)
    guided = sk.guidance.classifier_free(
        model.condition(class_labels=torch.tensor([1])), model.condition(class_labels=torch.tensor([3])), 2.5
    )
    api = sk.sample(guided, "ddim", nfe=3, num_samples=2, seed=5, schedule="discrete", progress=False)
    saved = np.load(tmp_path / "cfg.npz")
    assert np.array_equal(saved["samples"], api.samples.numpy()) and int(saved["class_label"]) == 1
    assert batches and set(batches) == {4}  # cond and null in one call on 2 x 2 inputs
    null = run(*args[:-2], "--class", 3, "--out", tmp_path / "null.npz")
    assert null.exit_code == 2 and "is the null (unconditional) label" in null.output
    target = run("--class", 1, "--null-class", 0, "--out", tmp_path / "x.npz")
    assert target.exit_code == 2 and "--null-class applies to --class on a loaded" in target.output
