"""The results file: one JSON object per finished cell, appended with flush + fsync.

A line is written only once its cell is finished, in one write, then flushed to disk, so a
crash (even kill -9) loses at most the cell that was running.  On reading:

- a torn last line (no final newline, not a whole record) is the cell that was running when the
  process died: it is dropped with a warning, and ``repair()`` cuts it off before appending;
- a line anywhere else that is not a JSON record is corruption: the file is refused with its line
  number and never written to (move it away or pick another --out);
- a record whose fields are incomplete (e.g. an ``ok`` cell without ``metrics``) is reported in
  ``invalid`` and left out, so its cell counts as not done and is computed again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import BinaryIO

from samplekit.errors import CorruptResultsError

STATUSES = ("ok", "failed", "skipped")
#: fields every record of a status needs (besides ``key``); solver cells that finished also need nfe_spent
REQUIRED = {"ok": ("metrics",), "failed": ("error",), "skipped": ("reason",)}
REQUIRED_BY_KIND = {("cell", "ok"): ("nfe_spent",), ("flow_ref", "ok"): ("nfe_spent",)}


def missing_fields(record: dict) -> list[str]:
    """The fields a record lacks for its status and kind (empty if it is complete)."""
    status = record.get("status")
    if status not in STATUSES:
        return [f"status (one of {list(STATUSES)}; got {status!r})"]
    need = REQUIRED[status] + REQUIRED_BY_KIND.get((record.get("kind", "cell"), status), ())
    missing = [f for f in need if f not in record]
    if status == "ok" and "metrics" in record and not isinstance(record["metrics"], dict):
        missing.append("metrics (a table of values)")
    return missing


class ResultsStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.records: dict[str, dict] = {}
        self.invalid: list[tuple[int, str]] = []  # (line number, what is missing)
        self.torn: str | None = None  # the warning about a dropped last line
        self._good_bytes: int | None = None
        self._fh: BinaryIO | None = None

    def load(self) -> dict[str, dict]:
        """Read every record (the last one of a key wins); raise on corruption before the last line."""
        self.records, self.invalid, self.torn, self._good_bytes = {}, [], None, None
        if not self.path.exists():
            return self.records
        with self.path.open("rb") as fh:
            data = fh.read()
        lines = data.split(b"\n")
        tail = lines.pop()  # b"" when the file ends with a newline
        for number, raw in enumerate(lines, start=1):
            parsed = self._parse(number, raw, last=False)  # only a torn last line parses to None
            if parsed is not None:
                self._take(number, parsed)
        if tail:
            number = len(lines) + 1
            record = self._parse(number, tail, last=True)
            if record is None:
                self._good_bytes = len(data) - len(tail)
                self.torn = (
                    f"results file {str(self.path)!r}: its last line {number} is cut short (the cell "
                    f"that was running when the process died); dropped, that cell runs again"
                )
            else:  # a whole record that only lacks its newline
                self._good_bytes = -1
                self._take(number, record)
        return self.records

    def _parse(self, number: int, raw: bytes, last: bool) -> dict | None:
        try:
            record = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            if last:
                return None
            raise CorruptResultsError(self._bad(number, f"it is not JSON ({exc})")) from None
        if not isinstance(record, dict) or not isinstance(record.get("key"), str):
            if last:
                return None
            raise CorruptResultsError(self._bad(number, "it is not a record with a 'key'"))
        return record

    def _take(self, number: int, record: dict) -> None:
        missing = missing_fields(record)
        if missing:
            self.invalid.append((number, ", ".join(missing)))
            self.records.pop(record["key"], None)  # an incomplete later record undoes an earlier one
        else:
            self.records[record["key"]] = record

    def _bad(self, number: int, why: str) -> str:
        return (
            f"results file {str(self.path)!r} line {number} is corrupt: {why}. It was left untouched; "
            "move it away (or fix that line) to start afresh, or pass another --out"
        )

    def problems(self) -> list[str]:
        """Human-readable notes on what ``load`` dropped (a torn last line, incomplete records)."""
        notes = [self.torn] if self.torn else []
        notes += [
            f"results file {str(self.path)!r} line {n}: record lacks {what}; ignored, its cell runs again"
            for n, what in self.invalid
        ]
        return notes

    def repair(self) -> None:
        """Before appending: cut a torn last line off, or end a whole last record with its newline."""
        if self._good_bytes is None:
            return
        if self._good_bytes < 0:
            with self.path.open("ab") as fh:
                fh.write(b"\n")
        else:
            with self.path.open("r+b") as fh:
                fh.truncate(self._good_bytes)
        self._good_bytes = None

    def append(self, record: dict) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.repair()
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

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
