"""Where a benchmark script writes.  The results recorded in the repository (beside each script) are
written only with ``--record``; without it a script writes to ``out/benchmarks/<name>/`` under the current
directory (made if missing) and says so, so a trial run (``--quick``) never replaces a recorded result.

    import recorded                                  # (sys.path holds benchmarks/)
    recorded.add_flag(parser)
    out = recorded.output_dir(HERE, args.record)     # HERE with --record, else out/benchmarks/<HERE.name>
"""

from __future__ import annotations

import sys
from pathlib import Path

SCRATCH = Path("out") / "benchmarks"


def add_flag(parser) -> None:
    parser.add_argument(
        "--record",
        action="store_true",
        help="write the recorded results beside this script (default: out/benchmarks/<name>/, a scratch copy)",
    )


def output_dir(here: Path, record: bool, name: str | None = None) -> Path:
    """``here`` with --record; else ``out/benchmarks/<name or here's name>/`` (made), announced on stderr."""
    if record:
        return here
    path = SCRATCH / (name or here.name)
    path.mkdir(parents=True, exist_ok=True)
    print(f"writing to {path} (the recorded results beside the script: --record)", file=sys.stderr)
    return path
