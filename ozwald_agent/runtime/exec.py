"""Running a command inside a container with a deadline (command health probes).

The SDK's `exec_run` has no timeout: a probe command that hangs would hang the agent. So
the output is read from the raw exec socket with `select` against a deadline; on timeout
the socket is closed and the command killed (by its host pid, which the engine reports,
when the agent is on the engine's host and may signal it), so hung probes do not pile up
against the container's pids limit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import docker

logger = logging.getLogger(__name__)

OUTPUT_LIMIT_BYTES = 64 * 1024
_FRAME_HEADER = struct.Struct(">BxxxL")
# After the output ends the engine may take a moment to record the exit code.
_EXIT_CODE_WAIT_S = 2.0


@dataclass(frozen=True)
class ExecResult:
    """How a command ended: its exit code (None when it timed out) and its output."""

    exit_code: int | None
    output: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def run_exec(
    api: docker.APIClient,
    container: str,
    argv: Sequence[str],
    timeout_s: float,
    *,
    kill_on_timeout: bool = True,
) -> ExecResult:
    """Runs `argv` (no shell) in the running `container`; stdout and stderr together."""
    deadline = time.monotonic() + timeout_s
    exec_id = str(api.exec_create(container, list(argv), stdout=True, stderr=True)["Id"])
    sock = api.exec_start(exec_id, socket=True)
    raw = getattr(sock, "_sock", sock)  # the SDK hands back a SocketIO over the socket
    try:
        data, timed_out = _read_until(raw, deadline)
    finally:
        with contextlib.suppress(OSError):
            sock.close()
    output = _demultiplex(data)
    if timed_out:
        if kill_on_timeout:
            _kill(api, exec_id)
        return ExecResult(None, output, timed_out=True)
    return ExecResult(_exit_code(api, exec_id), output)


def _read_until(raw: Any, deadline: float) -> tuple[bytes, bool]:
    data = bytearray()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return bytes(data), True
        readable, _, _ = select.select([raw], [], [], remaining)
        if not readable:
            return bytes(data), True
        chunk = raw.recv(65536)
        if not chunk:
            return bytes(data), False
        if len(data) < OUTPUT_LIMIT_BYTES + _FRAME_HEADER.size:
            data += chunk


def _demultiplex(data: bytes) -> str:
    """The payloads of the engine's stdout/stderr frames, in order, as text."""
    payload = bytearray()
    offset = 0
    while offset + _FRAME_HEADER.size <= len(data):
        _, size = _FRAME_HEADER.unpack_from(data, offset)
        offset += _FRAME_HEADER.size
        payload += data[offset : offset + size]
        offset += size
    return payload[:OUTPUT_LIMIT_BYTES].decode("utf-8", errors="replace")


def _exit_code(api: docker.APIClient, exec_id: str) -> int | None:
    give_up = time.monotonic() + _EXIT_CODE_WAIT_S
    while True:
        state = api.exec_inspect(exec_id)
        if not state.get("Running") and state.get("ExitCode") is not None:
            return int(state["ExitCode"])
        if time.monotonic() > give_up:
            return None
        time.sleep(0.02)


def _kill(api: docker.APIClient, exec_id: str) -> None:
    try:
        state = api.exec_inspect(exec_id)
    except Exception as e:
        logger.info("cannot inspect timed-out exec %s: %s", exec_id[:12], e)
        return
    pid = int(state.get("Pid") or 0)
    if not state.get("Running") or pid <= 0:
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError) as e:
        # Not our host's pid namespace, or not ours to signal: the command ends when it ends.
        logger.info("timed-out command (host pid %d) left running: %s", pid, e)
