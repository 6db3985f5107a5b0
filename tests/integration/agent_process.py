"""Start and stop real `ozwald-agent` processes for integration tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

AGENT = [sys.executable, "-m", "ozwald_agent.main"]


@dataclass
class RunningAgent:
    process: subprocess.Popen[str]
    socket: Path
    state_dir: Path
    log: Path
    extra_args: list[str] = field(default_factory=list)

    @property
    def target(self) -> str:
        return f"unix://{self.socket}"

    def logs(self) -> str:
        return self.log.read_text()

    def terminate(self, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            # Where it hangs is the finding: dump every thread's stack, then stop it.
            self.process.send_signal(signal.SIGUSR1)
            time.sleep(1)
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"agent still running {timeout} s after SIGTERM; its log:\n{self.logs()}"
            ) from None


def start_agent(
    workdir: Path,
    extra_args: Sequence[str] = (),
    *,
    socket: Path | None = None,
    state_dir: Path | None = None,
    wait: bool = True,
) -> RunningAgent:
    socket = socket or workdir / "agent.sock"
    state_dir = state_dir or workdir / "state"
    log = workdir / f"agent-{time.monotonic_ns()}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                *AGENT,
                "--socket",
                str(socket),
                "--state-dir",
                str(state_dir),
                "--log-format",
                "json",
                *extra_args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    agent = RunningAgent(process, socket, state_dir, log, list(extra_args))
    if wait:
        wait_until_serving(agent)
    return agent


def wait_until_serving(agent: RunningAgent, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if agent.process.poll() is not None:
            raise AssertionError(f"agent exited with {agent.process.returncode}:\n{agent.logs()}")
        if agent.socket.exists() and _health_serving(agent.target):
            return
        time.sleep(0.1)
    agent.terminate()
    raise AssertionError(f"agent not serving after {timeout} s:\n{agent.logs()}")


def _health_serving(target: str) -> bool:
    with grpc.insecure_channel(target) as channel:
        try:
            # types-grpcio-health-checking declares the stub without its methods.
            reply = health_pb2_grpc.HealthStub(channel).Check(  # type: ignore[attr-defined]
                health_pb2.HealthCheckRequest(), timeout=1.0
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def run_agent_command(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ozwald-agent to completion (for invocations expected to exit by themselves)."""
    return subprocess.run([*AGENT, *args], capture_output=True, text=True, timeout=30, check=False)
