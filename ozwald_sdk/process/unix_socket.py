"""Claiming a server's unix socket path safely."""

from __future__ import annotations

import socket
import stat
from pathlib import Path


class SocketInUseError(Exception):
    """Something already accepts connections on the socket path."""


class NotASocketError(Exception):
    """The socket path holds a file that is not a socket; it is never deleted for you."""


def prepare_socket_path(path: Path) -> None:
    """Clear a stale socket left by a dead server, refusing anything else at `path`.

    Call it while holding the lock that guards the socket (see exclusive_lock.py): then
    a socket file that refuses connections belongs to nobody. One that still accepts
    them belongs to a process that does not use the lock (an older version, or another
    program), and is refused.
    """
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise NotASocketError(f"{path} exists and is not a socket")
    if _accepts_connections(path):
        raise SocketInUseError(f"a process already accepts connections on {path}")
    path.unlink()


def _accepts_connections(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
        return True
