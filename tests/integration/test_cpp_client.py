"""A C++ client generated from proto/ by Debian's protoc and grpc_cpp_plugin calls the agent.

This is the proof that the contract, not the Python SDK, is the API: another language's
standard gRPC tooling builds a client from proto/ alone and reads a real agent's profile.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import grpc
import pytest
from ozwald.agent.v1 import agent_service_pb2, agent_service_pb2_grpc
from ozwald.common.v1 import gpu_pb2

from tests.integration.agent_process import RunningAgent

pytestmark = pytest.mark.integration

BUILD_SCRIPT = Path(__file__).resolve().parents[1] / "interop" / "build.sh"
EXIT_RPC_FAILED = 1


@pytest.fixture(scope="session")
def cpp_client() -> Path:
    """The built `ozwald_host_profile`; build.sh reuses it while protos and source are unchanged."""
    build = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=600, check=False
    )
    if build.returncode != 0:
        pytest.fail(
            f"building the C++ interop client failed (exit {build.returncode}); CI installs "
            f"the toolchain, so must you:\n{build.stderr}",
            pytrace=False,
        )
    return Path(build.stdout.strip().splitlines()[-1])


def run_client(client: Path, target: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(client), target], capture_output=True, text=True, timeout=30, check=False
    )


def parse_facts(stdout: str) -> dict[str, str]:
    facts: dict[str, str] = {}
    for line in stdout.splitlines():
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line!r}"
        assert key not in facts, f"{key} printed twice"
        facts[key] = value
    return facts


def memory_total_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no MemTotal in /proc/meminfo")


def gpu_facts_seen_from_python(target: str) -> dict[str, str]:
    with grpc.insecure_channel(target) as channel:
        reply = agent_service_pb2_grpc.AgentServiceStub(channel).GetHostProfile(
            agent_service_pb2.GetHostProfileRequest(), timeout=10
        )
    facts: dict[str, str] = {}
    for report in reply.profile.gpu_vendors:
        key = f"gpu.{gpu_pb2.GpuVendor.Name(report.vendor)}"
        facts[f"{key}.present"] = "true" if report.present else "false"
        facts[f"{key}.absence_reason"] = gpu_pb2.GpuAbsenceReason.Name(report.absence_reason)
    return facts


def test_cpp_client_reads_the_host_profile(cpp_client: Path, agent: RunningAgent) -> None:
    run = run_client(cpp_client, agent.target)

    assert run.returncode == 0, run.stderr
    facts = parse_facts(run.stdout)
    assert facts.pop("hostname") == socket.gethostname()
    assert int(facts.pop("logical_cores")) == os.cpu_count()
    assert int(facts.pop("memory_total_bytes")) == memory_total_bytes()
    # Every supported vendor, present or absent with its reason, decoded the same in C++.
    assert facts == gpu_facts_seen_from_python(agent.target)
    assert {"gpu.GPU_VENDOR_NVIDIA.present", "gpu.GPU_VENDOR_AMD.present"} <= facts.keys()


def test_cpp_client_exits_nonzero_with_the_grpc_status_when_no_agent_listens(
    cpp_client: Path, workdir: Path
) -> None:
    target = f"unix://{workdir / 'absent.sock'}"

    run = run_client(cpp_client, target)

    assert run.returncode == EXIT_RPC_FAILED
    assert run.stdout == ""
    assert f"GetHostProfile on {target} failed: UNAVAILABLE (14)" in run.stderr
