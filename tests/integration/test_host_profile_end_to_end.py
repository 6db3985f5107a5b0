"""A real agent asked for this host's profile through the SDK and through the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import docker
from google.protobuf import json_format
from ozwald.common.v1 import gpu_pb2, host_profile_pb2

from ozwald_sdk.agent_client import AgentClient, AsyncAgentClient
from ozwald_sdk.errors import ExitCode
from tests.integration.agent_process import RunningAgent, start_agent

FIXTURES = Path(__file__).parent.parent / "fixtures" / "hardware"
OZWALD = [sys.executable, "-m", "ozwald_sdk.cli.main"]


def _mem_total_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no MemTotal in /proc/meminfo")


def _ozwald(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*OZWALD, *args], capture_output=True, text=True, timeout=60, check=False)


def _assert_is_this_host(profile: host_profile_pb2.HostProfile) -> None:
    assert profile.cpu.logical_cores == os.cpu_count()
    assert profile.memory.total_bytes == _mem_total_bytes()
    engine = docker.from_env().version()
    assert profile.container_runtime.reachable, profile.container_runtime.detail
    assert profile.container_runtime.engine_version == engine["Version"]
    assert profile.container_runtime.api_version == engine["ApiVersion"]
    vendors = {report.vendor: report for report in profile.gpu_vendors}
    assert set(vendors) == {gpu_pb2.GPU_VENDOR_NVIDIA, gpu_pb2.GPU_VENDOR_AMD}
    has_nvidia = Path("/dev/nvidiactl").exists()
    assert vendors[gpu_pb2.GPU_VENDOR_NVIDIA].present == has_nvidia
    for report in vendors.values():
        if not report.present:
            assert report.absence_reason != gpu_pb2.GPU_ABSENCE_REASON_UNSPECIFIED
            assert report.detail


def test_sdk_reports_this_host(agent: RunningAgent) -> None:
    with AgentClient(agent.target) as client:
        profile = client.get_host_profile()
    _assert_is_this_host(profile)


def test_async_sdk_watches_this_host(agent: RunningAgent) -> None:
    async def two_profiles() -> list[host_profile_pb2.HostProfile]:
        seen: list[host_profile_pb2.HostProfile] = []
        async with AsyncAgentClient(agent.target) as client:
            async for profile in client.watch_host_profile(interval=1.0):
                seen.append(profile)
                if len(seen) == 2:
                    break
        return seen

    first, second = asyncio.run(two_profiles())
    _assert_is_this_host(second)
    assert second.collected_at.ToNanoseconds() > first.collected_at.ToNanoseconds()


def test_cli_json_reports_this_host(agent: RunningAgent) -> None:
    result = _ozwald("--agent", agent.target, "host", "--json")
    assert result.returncode == 0, result.stderr
    profile = json_format.Parse(result.stdout, host_profile_pb2.HostProfile())
    _assert_is_this_host(profile)
    # Machines get every field, defaults included.
    assert "swap_total_bytes" in json.loads(result.stdout)["memory"]


def test_cli_table_is_readable_at_80_columns(agent: RunningAgent) -> None:
    result = _ozwald("--agent", agent.target, "show_host_resources")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    engine = docker.from_env().version()["Version"]
    assert any(engine in line for line in lines)
    assert any(line.startswith("NVIDIA GPUs") for line in lines)
    assert any(line.startswith("AMD GPUs") for line in lines)


def test_cli_shows_simulated_gpus_in_a_table(workdir: Path) -> None:
    fixture = FIXTURES / "nvidia_h100_x8.json"
    running = start_agent(workdir, ["--hardware-snapshot", str(fixture)])
    try:
        result = _ozwald("--agent", running.target, "host")
    finally:
        assert running.terminate() == 0
    assert result.returncode == 0, result.stderr
    gpu_rows = [line for line in result.stdout.splitlines() if "NVIDIA H100" in line]
    assert len(gpu_rows) == 8
    assert max(len(line) for line in result.stdout.splitlines()) <= 80


def test_cli_without_agent_says_how_to_start_one(workdir: Path) -> None:
    result = _ozwald("--agent", f"unix://{workdir}/none.sock", "host")
    assert result.returncode == ExitCode.AGENT_UNREACHABLE
    assert "error:" in result.stderr
    assert "hint:" in result.stderr
    assert "ozwald-agent" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_finds_the_agent_from_the_environment(agent: RunningAgent) -> None:
    result = subprocess.run(
        [*OZWALD, "host", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "OZWALD_AGENT": agent.target},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["cpu"]["logical_cores"] == os.cpu_count()
