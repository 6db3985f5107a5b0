"""An advisory lock that one process holds for its lifetime.

Two agents, or two orchestrators, must never share a socket or a state directory. A
lock file taken with flock(2) is released by the kernel when its holder dies, so a
crashed process never leaves a lock behind, unlike a PID file alone.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class LockHeldError(Exception):
    """Another live process holds the lock."""

    def __init__(self, path: Path, holder_pid: int | None) -> None:
        self.path = path
        self.holder_pid = holder_pid
        holder = f"process {holder_pid}" if holder_pid else "another process"
        super().__init__(f"{path} is locked by {holder}")


class ExclusiveLock:
    """flock-based lock on `path`, recording the holder's PID in the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_pid(fd)
                os.close(fd)
                raise LockHeldError(self.path, holder) from None
            if _still_linked(fd, self.path):
                break
            # The previous holder unlinked this file while we opened it: lock the new one.
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        # Unlink before unlocking so a successor never locks a file about to vanish.
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None


def _still_linked(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
