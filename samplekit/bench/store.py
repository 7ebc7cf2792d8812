"""The results file: one JSON object per finished cell, appended with flush + fsync.

A line is written only once its cell is finished, in one write, then flushed to disk, so a
crash or Ctrl-C loses at most the cell that was running.  A file with a line that is not a JSON
object is refused with its line number and never written to: move it away or pick another --out.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from samplekit.registry import SamplekitError


class CorruptResultsError(SamplekitError):
    """The results file holds something that is not one JSON record per line."""


class ResultsStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.records: dict[str, dict] = {}
        self._fh = None

    def load(self) -> dict[str, dict]:
        """Read every record (the last one of a key wins); raise on any corrupt line."""
        self.records = {}
        if not self.path.exists():
            return self.records
        with self.path.open("rb") as fh:
            data = fh.read()
        if data and not data.endswith(b"\n"):
            raise CorruptResultsError(self._bad(data.count(b"\n") + 1, "its last line is cut short"))
        for number, raw in enumerate(data.splitlines(), start=1):
            try:
                record = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise CorruptResultsError(self._bad(number, f"it is not JSON ({exc})")) from None
            if not isinstance(record, dict) or not isinstance(record.get("key"), str):
                raise CorruptResultsError(self._bad(number, "it is not a record with a 'key'"))
            self.records[record["key"]] = record
        return self.records

    def _bad(self, number: int, why: str) -> str:
        return (f"results file {str(self.path)!r} line {number} is corrupt: {why}. It was left untouched; "
                "move it away (or fix that line) to start afresh, or pass another --out")

    def append(self, record: dict) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("ab")
        line = (json.dumps(record, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")
        self._fh.write(line)
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.records[record["key"]] = record

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> "ResultsStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
