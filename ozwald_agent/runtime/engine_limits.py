"""The open-files limit a container may be given on this engine.

A container's hard `nofile` limit cannot exceed what the engine's own processes have:
runc sets it without CAP_SYS_RESOURCE in the engine's namespace, and the start fails with
"error setting rlimit type 7: operation not permitted" (seen on this project's build VM,
whose dockerd runs with 20000). Debian's docker.io runs dockerd with `LimitNOFILE=infinity`
(1048576), Docker 25 and later with the systemd default (524288), so the desired 65536 fits
almost everywhere; where it does not, the agent asks for the engine's limit instead of
failing every start.

Only a local engine can be asked: the daemon's pid comes from the socket's peer
credentials (SO_PEERCRED), its limit from /proc/PID/limits (world-readable).
"""

from __future__ import annotations

import logging
import socket
import struct
from pathlib import Path

logger = logging.getLogger(__name__)

_PEERCRED = struct.Struct("3i")  # pid, uid, gid
_LIMIT_NAME = "Max open files"


def engine_pid(socket_path: str) -> int | None:
    """The pid of the process serving the unix socket, or None."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(2.0)
            connection.connect(socket_path)
            raw = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    except OSError as e:
        logger.debug("cannot ask %s for its peer credentials: %s", socket_path, e)
        return None
    pid, _, _ = _PEERCRED.unpack(raw)
    return pid if pid > 0 else None


def open_files_hard_limit(limits_text: str) -> int | None:
    """The hard "Max open files" from a /proc/PID/limits text; None when unlimited/absent."""
    for line in limits_text.splitlines():
        if line.startswith(_LIMIT_NAME):
            fields = line[len(_LIMIT_NAME) :].split()
            if len(fields) >= 2 and fields[1].isdigit():
                return int(fields[1])
            return None
    return None


def engine_open_files_limit(socket_path: str, proc: Path = Path("/proc")) -> int | None:
    """The engine daemon's hard open-files limit, when it can be found out."""
    pid = engine_pid(socket_path)
    if pid is None:
        return None
    try:
        text = (proc / str(pid) / "limits").read_text()
    except OSError as e:
        logger.debug("cannot read the limits of the engine (pid %d): %s", pid, e)
        return None
    return open_files_hard_limit(text)
