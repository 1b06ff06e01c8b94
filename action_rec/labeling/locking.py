"""An exclusive lock on a command's outputs, so two runs never append to the same files at once.

Two `action-rec label` runs on one --out (a cron job overlapping a manual run) would each label every
video and append its rows: duplicated rows and timeline windows. The lock is `fcntl.flock` on a hidden
`.NAME.lock` file next to each output (a folder's too, so the name does not depend on whether the folder
exists yet; symlinks are resolved first, so two spellings of one output share a lock): the kernel drops it when the process
ends, however it ends (kill -9 included), so there is never a stale lock to clean up, and it works
across machines on NFS (Linux maps flock onto NFS byte-range locks). The output files themselves cannot
carry the lock: they are replaced by atomic renames, and a lock on a replaced inode protects nothing.
The holder writes its pid, host and start time into the lock file for the other run's message. The
lock files stay (removing a flock file while another process may be opening it is a race).
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from ..utils.errors import UsageError

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there are not protected from each other
    fcntl = None


class OutputBusyError(UsageError):
    """Another process holds the lock on an output."""


def lock_path(path: str | os.PathLike) -> Path:
    p = Path(path).resolve()
    return p.parent / f".{p.name}.lock"


class OutputLock:
    """Exclusive, non-blocking locks on several outputs ({"--out": path, ...}); all or none are taken.

    `acquire()` raises OutputBusyError naming the output and its holder if another process has one of
    them. Released by `release()`, or when this object is garbage collected or the process ends."""

    def __init__(self, outputs: dict[str, str | os.PathLike | None], command: str = "action-rec"):
        self.outputs = {flag: Path(p) for flag, p in outputs.items() if p}
        self.command = command
        self._files: list = []

    def acquire(self) -> OutputLock:
        if fcntl is None:
            return self
        try:
            for flag, path in self.outputs.items():
                self._lock_one(flag, path)
        except BaseException:
            self.release()
            raise
        return self

    def _lock_one(self, flag: str, path: Path) -> None:
        lp = lock_path(path)
        lp.parent.mkdir(parents=True, exist_ok=True)
        f = open(lp, "a+", encoding="utf-8")  # noqa: SIM115 - held open for as long as the lock
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip()
            f.close()
            raise OutputBusyError(
                f"{flag} {path} is being written by another run" + (f" ({holder})" if holder else "")
                + f"; wait until it ends, or choose another {flag}") from None
        except OSError:
            f.close()
            raise
        f.seek(0)
        f.truncate()
        f.write(f"{self.command}, pid {os.getpid()} on {socket.gethostname()}, "
                f"since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        f.flush()
        self._files.append(f)

    def release(self) -> None:
        for f in self._files:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            finally:
                f.close()
        self._files = []

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
