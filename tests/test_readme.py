"""Every code block and CLI line of the README runs as written: in order, in one temporary directory, with
the tiny models they name; python blocks in one namespace; a bash line ``samplekit ...`` through the CLI's
entry point in this process, any other line through bash. Blocks marked ``no-run`` give a reason; the solver
table is the registry's."""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import subprocess
import sys
import textwrap
import traceback
from pathlib import Path

import pytest

import readme_doc
from readme_doc import RUNNABLE, Block
from readme_fixtures import FIXTURES

try:
    import tomllib
except ImportError:  # Python 3.10: the backport, a core dependency there
    import tomli as tomllib

BLOCKS = readme_doc.blocks()


def test_readme_has_the_blocks_it_promises():
    langs = [b.lang for b in BLOCKS if b.no_run is None]
    assert langs.count("python") >= 5 and langs.count("bash") >= 2, langs


def test_every_block_runs_or_says_why_not():
    """A block is runnable (python, bash, toml) with known fixtures, or marked ``no-run: <reason>``."""
    problems = []
    for b in BLOCKS:
        if b.no_run is not None:
            if len(b.no_run.split()) < 2:
                problems.append(f"{b.where()}: `no-run` needs a reason (```{b.lang} no-run: why it is not run)")
            continue
        if b.lang not in RUNNABLE:
            problems.append(f"{b.where()}: language {b.lang!r} is not run; use {RUNNABLE} or mark it no-run: reason")
        unknown = [f for f in b.fixtures if f not in FIXTURES]
        if unknown:
            problems.append(f"{b.where()}: unknown fixture(s) {unknown}; known: {sorted(FIXTURES)}")
        if b.attrs:
            problems.append(f"{b.where()}: unknown info-string attribute(s) {sorted(b.attrs)}")
    assert not problems, "\n".join(problems)


def test_the_info_string_parser():
    text = "```bash no-run: installs packages\npip install x\n```\n\n```python with=a,b\nx = 1\n```\n```python\n```\n"
    first, second, third = readme_doc.blocks(text)
    assert (first.lang, first.no_run, first.line, first.code) == ("bash", "installs packages", 2, "pip install x\n")
    assert (second.lang, second.fixtures, second.no_run, second.line) == ("python", ("a", "b"), None, 6)
    assert readme_doc.blocks("```python no-run\n```\n")[0].no_run == ""
    assert third.code == "\n"
    with pytest.raises(ValueError, match="not closed"):
        readme_doc.blocks("```python\nx = 1\n")


def test_solver_table_is_the_registry():
    """The table between the solver-table markers lists every registered solver with its declared kind,
    order, NFE per step and peer names, as the registry has them now."""
    assert readme_doc.table_in_readme() == readme_doc.solver_table(), (
        "the README's solver table differs from the registry: run `python tests/readme_doc.py --write`"
    )


def _cli_env(tmp: Path) -> dict:
    """The environment of a command line run through bash: ``samplekit`` is this interpreter's
    ``python -m samplekit`` and ``torchrun`` this interpreter's, with the repository importable."""
    shims = tmp / ".readme_bin"
    shims.mkdir(exist_ok=True)
    shim = shims / "samplekit"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m samplekit "$@"\n')
    shim.chmod(0o755)
    root = readme_doc.ROOT
    path = os.pathsep.join([str(shims), str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    pythonpath = os.pathsep.join(p for p in (str(root), str(root / "plugins"), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PATH": path, "PYTHONPATH": pythonpath, "OMP_NUM_THREADS": "1"}


def _commands(code: str) -> list[str]:
    """A bash block's command lines, continuation lines joined, blank and comment-only lines dropped."""
    return [line for line in code.replace("\\\n", " ").splitlines() if shlex.split(line, comments=True)]


def _samplekit_in_process(argv: list[str]) -> str | None:
    """``samplekit ARGS`` through the console script's own entry point, in this process."""
    from samplekit.cli import main

    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main(argv)
    except SystemExit as exc:
        if exc.code not in (0, None):
            return f"exit {exc.code}\n{textwrap.indent((out.getvalue() + err.getvalue())[-3000:], '    ')}"
    return None


def _shell(line: str, tmp: Path) -> str | None:
    """Any other command line, through bash, in the README's directory."""
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", line], cwd=tmp, env=_cli_env(tmp), capture_output=True, text=True
    )
    if proc.returncode != 0:
        return f"exit {proc.returncode}\n{textwrap.indent((proc.stdout + proc.stderr)[-3000:], '    ')}"
    return None


def _run(block: Block, namespace: dict, tmp: Path) -> str | None:
    """Run one block; the failure's description, or None."""
    try:
        if block.lang == "toml":
            tomllib.loads(block.code)
        elif block.lang == "python":
            for name in block.fixtures:
                namespace.update(FIXTURES[name]())
            # padded so that a traceback names the README's own line numbers
            exec(compile("\n" * (block.line - 1) + block.code, "README.md", "exec"), namespace)
        elif block.lang == "bash":
            for line in _commands(block.code):
                argv = shlex.split(line, comments=True)
                problem = _samplekit_in_process(argv[1:]) if argv[0] == "samplekit" else _shell(line, tmp)
                if problem:
                    return f"`{line.strip()}`: {problem}"
        else:
            return f"language {block.lang!r} cannot run"
    except Exception:  # noqa: BLE001  (every block runs; all failures are reported together)
        return traceback.format_exc(limit=-3)
    return None


def test_every_block_runs_as_written(tmp_path, monkeypatch):
    """Every runnable block, in order, in one temporary directory (files one block writes are there for the
    next), python blocks in one namespace. A failing block does not stop the rest: all failures are listed."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SAMPLEKIT_CACHE_DIR", str(tmp_path / ".cache"))  # fresh: no fitted grid from a past run
    namespace: dict = {"__name__": "readme"}
    failures = []
    ran = 0
    for block in BLOCKS:
        if block.no_run is not None:
            continue
        problem = _run(block, namespace, tmp_path)
        ran += 1
        if problem:
            failures.append(f"{block.where()}:\n{textwrap.indent(block.code, '  | ')}{problem}")
    assert ran == sum(b.no_run is None for b in BLOCKS)
    assert not failures, f"{len(failures)} of {ran} README blocks failed:\n\n" + "\n\n".join(failures)
