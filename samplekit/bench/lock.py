"""One benchmark run per output directory: ``OUT/.lock`` holds the running process's PID.

Under torchrun rank r > 0 holds ``OUT/.lock.rank<r>``.  A second run on the same ``--out`` is refused with
the PID it waits for; a lock left by a process that no longer exists (kill -9, a power cut) is stale and
taken over.  The lock is created with O_CREAT | O_EXCL, so two runs starting at once cannot both get it.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from samplekit.errors import BenchLockedError

LOCK_NAME = ".lock"


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _holder(path: Path) -> tuple[int, str]:
    try:
        pid_text, _, host = path.read_text(encoding="utf-8").partition(" ")
        return int(pid_text), host.strip()
    except (OSError, ValueError):
        return -1, ""


class OutputLock:
    """``with OutputLock(out): ...`` holds ``out/.lock`` for this process."""

    def __init__(self, out: str | Path, rank: int = 0) -> None:
        self.out = Path(out)
        self.path = self.out / (LOCK_NAME if rank == 0 else f"{LOCK_NAME}.rank{rank}")
        self.took_over: int | None = None  # the dead PID whose stale lock was taken over

    def acquire(self) -> OutputLock:
        self.out.mkdir(parents=True, exist_ok=True)
        me = f"{os.getpid()} {socket.gethostname()}"
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                pid, host = _holder(self.path)
                if pid == os.getpid():
                    raise BenchLockedError(f"this process already runs a benchmark on {str(self.out)!r}") from None
                same_host = host in ("", socket.gethostname())
                if pid > 0 and (_alive(pid) or not same_host):
                    raise BenchLockedError(
                        f"another `samplekit bench` (pid {pid}{'' if same_host else ' on ' + host}) is writing to "
                        f"{str(self.out)!r}; wait for it to finish or pass another --out (if that run is gone, "
                        f"delete {str(self.path)!r})"
                    ) from None
                self.took_over = pid  # stale: its process is dead
                try:
                    self.path.unlink()
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(me)
            return self
        raise BenchLockedError(f"could not take the lock {str(self.path)!r}; another run keeps taking it")

    def release(self) -> None:
        pid, _ = _holder(self.path)
        if pid == os.getpid():
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
