"""The README as a test: its fenced code blocks, the tiny models they name, and its generated solver table.

A block's info string is its language and attributes:

    ```python with=FIXTURE[,FIXTURE]   run after the named fixtures put their variables in the namespace
    ```bash                            each line runs through the CLI (``samplekit`` is this interpreter's
                                       ``python -m samplekit``), in the README's temporary directory
    ```toml                            parsed
    ```LANG no-run: REASON             not run; the reason is required (e.g. it installs packages)

Python blocks share one namespace and every block runs in order in one temporary directory, so a file a block
writes is there for the next.  ``python tests/readme_doc.py --write`` regenerates the solver table between the
``solver-table`` markers from the registry.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TABLE_START = "<!-- solver-table:"
TABLE_END = "<!-- /solver-table -->"
RUNNABLE = ("python", "bash", "toml")


@dataclass(frozen=True)
class Block:
    """One fenced code block: its language, attributes, the README line (1-based) of its first code line, and
    its text."""

    lang: str
    line: int
    code: str
    fixtures: tuple[str, ...] = ()
    no_run: str | None = None  # the reason, "" when the mark has none
    attrs: dict = field(default_factory=dict)

    def where(self) -> str:
        return f"README.md line {self.line} ({self.lang} block)"


_FENCE = re.compile(r"^```(\S*)(.*)$")


def parse_info(lang: str, rest: str) -> dict:
    """The attributes of an info string: ``with=a,b`` and ``no-run: reason`` (reason to the end of the line)."""
    attrs: dict = {}
    rest = rest.strip()
    mark = re.search(r"(?:^|\s)no-run(?::\s*(.*))?$", rest)
    if mark:
        attrs["no-run"] = (mark.group(1) or "").strip()
        rest = rest[: mark.start()].strip()
    for word in rest.split():
        key, _, value = word.partition("=")
        attrs[key] = value
    return attrs


def blocks(text: str | None = None) -> list[Block]:
    """Every fenced block of the README, in order."""
    text = README.read_text() if text is None else text
    found: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        lang, attrs = m.group(1), parse_info(m.group(1), m.group(2))
        start = i + 1
        j = start
        while j < len(lines) and lines[j].rstrip() != "```":
            j += 1
        if j == len(lines):
            raise ValueError(f"README.md line {start}: the ``` block is not closed")
        fixtures = tuple(f for f in attrs.pop("with", "").split(",") if f)
        no_run = attrs.pop("no-run", None)
        found.append(Block(lang, start + 1, "\n".join(lines[start:j]) + "\n", fixtures, no_run, attrs))
        i = j + 1
    return found


# --- the solver table -------------------------------------------------------------------------------------


def _host(alias: str) -> str:
    """Which host names a solver this way: k-diffusion's sample_* functions, diffusers' *Scheduler classes,
    otherwise ComfyUI (its KSampler names and custom-sampler nodes)."""
    if alias.startswith("sample_"):
        return "k-diffusion"
    if alias.endswith("Scheduler"):
        return "diffusers"
    return "ComfyUI"


def _order(value: float) -> str:
    return f"{value:g}"


def solver_table() -> str:
    """The README's solver table, from the registry: name, kind, order, NFE per step, the peers' names."""
    import samplekit as sk

    rows = [
        "| solver | kind | order | NFE / step | k-diffusion | diffusers | ComfyUI |",
        "|---|---|---|---|---|---|---|",
    ]
    for info in sorted(sk.available("solver"), key=lambda c: c.name):
        d = info.as_dict()
        kind = "adaptive ODE" if d.get("adaptive") else ("SDE" if d.get("stochastic") else "ODE")
        names: dict[str, list[str]] = {"k-diffusion": [], "diffusers": [], "ComfyUI": []}
        for alias in d.get("aliases", []):
            names[_host(alias)].append(f"`{alias}`")
        rows.append(
            f"| `{info.name}` | {kind} | {_order(d['order'])} | {d['nfe_per_step']} | "
            + " | ".join(", ".join(names[h]) or "" for h in names)
            + " |"
        )
    return "\n".join(rows) + "\n"


def table_in_readme(text: str | None = None) -> str:
    """The README's text between the solver-table markers."""
    text = README.read_text() if text is None else text
    start = text.index(TABLE_START)
    start = text.index("\n", start) + 1
    return text[start : text.index(TABLE_END)]


def write_table() -> None:
    text = README.read_text()
    current = table_in_readme(text)
    start = text.index(TABLE_START)
    start = text.index("\n", start) + 1
    README.write_text(text[:start] + solver_table() + text[start + len(current) :])


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/readme_doc.py --write   (regenerates the README's solver table)")
    write_table()
    print(f"wrote the solver table of {README}")
