"""The real ozwald-orchestrator as a process for the simulated testbed: start, kill, restart.

Simulated agents are only worth something against the real thing, so scenario tests and
benchmarks run `python -m ozwald_orchestrator.main` with its own state directory, unix
socket and mutual-TLS port, and talk to it through FleetClient like an operator. The TCP
port is chosen once and kept, so that a restarted orchestrator is found where the agents
keep redialling.
"""

from __future__ import annotations

import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ozwald_sdk.errors import OzwaldError
from ozwald_sdk.orchestrator_client import FleetClient
from ozwald_testbed.real_processes import TestbedProcess, start_process
from ozwald_testbed.sim_pki import FleetPki

START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class OrchestratorSettings:
    """The orchestrator's health timing and scheduler (its command-line flags)."""

    heartbeat_interval_s: float = 1.0
    heartbeat_ttl_s: float = 3.0
    reschedule_grace_s: float = 5.0
    strategy: str = "binpack"
    extra_args: tuple[str, ...] = ()


class OrchestratorProcess:
    """One orchestrator process and its files under `work_dir` (keep the path short: the
    unix socket's path must fit in 107 bytes)."""

    def __init__(
        self,
        work_dir: Path,
        pki: FleetPki,
        settings: OrchestratorSettings | None = None,
        *,
        port: int | None = None,
    ) -> None:
        self.work_dir = work_dir
        self.settings = settings or OrchestratorSettings()
        self.state_dir = work_dir / "state"
        self.socket_path = work_dir / "orch.sock"
        self.log_path = work_dir / "orchestrator.log"
        self.port = port or free_port()
        self._tls = pki.orchestrator()
        self.process: TestbedProcess | None = None

    @property
    def target(self) -> str:
        """The address agents dial."""
        return f"127.0.0.1:{self.port}"

    @property
    def socket_target(self) -> str:
        return f"unix://{self.socket_path}"

    def command(self) -> list[str]:
        s = self.settings
        return [
            sys.executable,
            "-m",
            "ozwald_orchestrator.main",
            "--listen",
            self.target,
            "--tls-cert",
            str(self._tls.cert),
            "--tls-key",
            str(self._tls.key),
            "--tls-client-ca",
            str(self._tls.client_ca),
            "--socket",
            str(self.socket_path),
            "--state-dir",
            str(self.state_dir),
            "--heartbeat-interval",
            f"{s.heartbeat_interval_s:g}",
            "--heartbeat-ttl",
            f"{s.heartbeat_ttl_s:g}",
            "--reschedule-grace",
            f"{s.reschedule_grace_s:g}",
            "--strategy",
            s.strategy,
            *s.extra_args,
        ]

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Starts it and waits until FleetService answers on the unix socket."""
        if self.process is not None and self.process.running():
            return
        self.process = start_process(
            "ozwald-orchestrator",
            self.command(),
            log=self.log_path,
            marker=str(self.work_dir),
        )
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if not self.process.running():
                raise RuntimeError(
                    f"ozwald-orchestrator exited at start; its log:\n{self.process.log_tail()}"
                )
            if self.socket_path.exists():
                try:
                    with FleetClient(self.socket_target, timeout=2.0) as client:
                        client.list_hosts()
                    return
                except OzwaldError as e:
                    last = e
            time.sleep(0.05)
        raise TimeoutError(
            f"ozwald-orchestrator did not answer within {timeout:g} s ({last}); its log:\n"
            + self.process.log_tail()
        )

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed or closed."""
        if self.process is not None:
            self.process.kill()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def restart(self, *, kill: bool = True) -> None:
        if kill:
            self.kill()
        else:
            self.stop()
        self.start()

    def client(self, timeout: float = 10.0) -> FleetClient:
        """A FleetClient over the unix socket (close it, or use it as a context manager)."""
        return FleetClient(self.socket_target, timeout=timeout)

    def log_tail(self, lines: int = 60) -> str:
        return "(not started)" if self.process is None else self.process.log_tail(lines)


def free_port() -> int:
    """A TCP port nothing listens on now (the orchestrator binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
