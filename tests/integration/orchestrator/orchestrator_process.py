"""Start and stop a real `ozwald-orchestrator` process, with throwaway mutual-TLS material."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

import grpc
from ozwald.orchestrator.v1 import fleet_service_pb2_grpc

from tests.support.certificates import Authority

ORCHESTRATOR = [sys.executable, "-m", "ozwald_orchestrator.main"]
# Short timings keep the scenarios quick; the logic is the same at the defaults.
TIMING = ["--heartbeat-interval", "0.2", "--heartbeat-ttl", "0.8", "--reschedule-grace", "1.5"]
HEARTBEAT_S = 0.2

FleetStub: TypeAlias = "fleet_service_pb2_grpc.FleetServiceAsyncStub"


@dataclass
class Pki:
    """One CA that signs the orchestrator's server certificate and every client's."""

    directory: Path
    authority: Authority = field(default_factory=lambda: Authority("ozwald-test-ca"))

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ca = self.authority.write_pem(self.directory / "ca.pem")
        issued = self.authority.issue("ozwald-orchestrator", server=True)
        self.server_cert, self.server_key = issued.write(self.directory, "server")

    def credentials(self, name: str, role: str) -> grpc.ChannelCredentials:
        """Client credentials for a certificate with CN=name and OU=role."""
        issued = self.authority.issue(name, server=False, unit=role)
        return grpc.ssl_channel_credentials(
            root_certificates=self.authority.pem,
            private_key=issued.key,
            certificate_chain=issued.cert,
        )


@dataclass
class RunningOrchestrator:
    process: subprocess.Popen[str]
    socket: Path
    state_dir: Path
    log: Path
    port: int

    @property
    def tcp_target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def unix_target(self) -> str:
        return f"unix://{self.socket}"

    def logs(self) -> str:
        return self.log.read_text()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGUSR1)
            time.sleep(1)
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"orchestrator still running {timeout} s after SIGTERM; its log:\n{self.logs()}"
            ) from None


def start_orchestrator(
    workdir: Path,
    pki: Pki,
    extra_args: Sequence[str] = (),
    *,
    port: int = 0,
    timeout: float = 20.0,
) -> RunningOrchestrator:
    socket = workdir / "orchestrator.sock"
    state_dir = workdir / "orchestrator-state"
    port_file = state_dir / "orchestrator.port"
    port_file.unlink(missing_ok=True)
    log = workdir / f"orchestrator-{time.monotonic_ns()}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                *ORCHESTRATOR,
                "--socket",
                str(socket),
                "--state-dir",
                str(state_dir),
                "--listen",
                f"127.0.0.1:{port}",
                "--tls-cert",
                str(pki.server_cert),
                "--tls-key",
                str(pki.server_key),
                "--tls-client-ca",
                str(pki.ca),
                "--log-format",
                "json",
                *extra_args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"orchestrator exited with {process.returncode}:\n{log.read_text()}"
            )
        if port_file.exists() and socket.exists():
            text = port_file.read_text().strip()
            if text:
                return RunningOrchestrator(process, socket, state_dir, log, int(text))
        time.sleep(0.05)
    process.kill()
    process.wait()
    raise AssertionError(f"orchestrator not serving after {timeout} s:\n{log.read_text()}")
