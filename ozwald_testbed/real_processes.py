"""The testbed's long-running processes (orchestrator, agents): start, signal, stop.

A process is known by its pid and a marker, a string its command line must contain (the
testbed's work directory): `ozwald-testbed down` may run long after `up` exited, and a
recorded pid may by then belong to something else, which must not be signalled.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

_POLL_S = 0.05
_EXEC_RETRIES = 20
# How testbed processes are started (python -m MODULE): what `find_processes` looks for.
PROGRAMS = ("ozwald_orchestrator.main", "ozwald_agent.main")


@dataclass
class TestbedProcess:
    """One process the testbed started, alive or not."""

    name: str
    pid: int
    marker: str
    log: Path | None
    command: tuple[str, ...] = ()
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    __test__ = False  # a name pytest would otherwise try to collect

    def running(self) -> bool:
        if self.popen is not None:
            # Reaps it when it ended, so a zombie is not counted as running.
            return self.popen.poll() is None
        cmdline = _cmdline(self.pid)
        if self.marker.encode() not in cmdline:
            return False  # the pid was reused by another program
        state = _proc_state(self.pid)
        return state not in ("Z", "X")

    def signal(self, signum: signal.Signals) -> None:
        if not self.running():
            return
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            return
        logger.info("sent %s to %s (pid %d)", signum.name, self.name, self.pid)

    def wait(self, timeout: float) -> bool:
        """True when it ended within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while self.running():
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_S)
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, and SIGKILL when it is still there after `timeout` seconds."""
        self.signal(signal.SIGTERM)
        if not self.wait(timeout):
            logger.warning(
                "%s (pid %d) ignored SIGTERM for %g s; killing it", self.name, self.pid, timeout
            )
            self.kill()

    def kill(self) -> None:
        """SIGKILL, as a crash or a power cut: nothing is cleaned up."""
        self.signal(signal.SIGKILL)
        if not self.wait(10.0):
            raise RuntimeError(f"{self.name} (pid {self.pid}) survived SIGKILL for 10 s")

    def log_tail(self, lines: int = 40) -> str:
        if self.log is None:
            return "(its log is unknown: it was found, not started, by this run)"
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return f"(no log at {self.log})"
        return "\n".join(text.splitlines()[-lines:])


def start_process(
    name: str,
    argv: Sequence[str],
    *,
    log: Path,
    marker: str,
    env: Mapping[str, str] | None = None,
) -> TestbedProcess:
    """Start `argv` in a session of its own (it outlives the caller, and a Ctrl-C in the
    caller's terminal does not reach it), output appended to `log`."""
    if marker not in " ".join(argv):
        raise ValueError(f"the marker {marker!r} is not in {name}'s command line")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
    logger.info("started %s (pid %d), log %s", name, popen.pid, log)
    return TestbedProcess(
        name=name, pid=popen.pid, marker=marker, log=log, command=tuple(argv), popen=popen
    )


def find_processes(marker: str, programs: Sequence[str] = PROGRAMS) -> list[TestbedProcess]:
    """Running processes whose command line holds `marker` and runs one of `programs`:
    a testbed's processes, also those a killed run of it left behind. A process caught in
    the instant of its exec shows no command line yet and is not found; callers look after
    their starts have returned."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            raw = (entry / "cmdline").read_bytes().decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        words = raw.rstrip("\0").split("\0")
        program = next((p for p in programs if any(p in word for word in words)), None)
        if program is None or not any(marker in word for word in words):
            continue
        process = TestbedProcess(
            name=program, pid=int(entry.name), marker=marker, log=None, command=tuple(words)
        )
        if process.running():
            found.append(process)
    return found


def _cmdline(pid: int) -> bytes:
    """The pid's command line; b"" when there is no such process. A process in the middle of
    exec shows an empty one for a moment, so an empty answer is asked again briefly."""
    for _ in range(_EXEC_RETRIES):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return b""
        if cmdline:
            return cmdline
        time.sleep(_POLL_S / 5)
    return b""


def _proc_state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return "X"
    # The state follows the command name, which is in parentheses and may hold spaces.
    return stat.rsplit(")", 1)[1].split()[0]
