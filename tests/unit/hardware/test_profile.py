"""The whole host profile, with GPUs from a snapshot and no Docker Engine to reach."""

from __future__ import annotations

import os
import time
from importlib.metadata import version
from pathlib import Path

import pytest
from ozwald.common.v1 import container_runtime_pb2, gpu_pb2

from ozwald_agent.hardware.nvml_replay import ReplayNvmlLibrary
from ozwald_agent.hardware.profile import collect_host_profile, detect_gpus
from ozwald_agent.hardware.snapshot import load_snapshot
from tests.unit.hardware.snapshots import sources

FIXTURES = Path(__file__).parents[2] / "fixtures" / "hardware"


@pytest.fixture(autouse=True)
def no_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests never reach a Docker Engine: point DOCKER_HOST at nothing."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")


class ExplodingNvml(ReplayNvmlLibrary):
    """An NVML adapter with a bug: it raises what it should have translated."""

    def init(self) -> None:
        raise RuntimeError("adapter bug")


def test_the_profile_has_every_field(tmp_path: Path) -> None:
    before = time.time()

    profile = collect_host_profile(
        tmp_path / "state", sources=load_snapshot(FIXTURES / "mixed_nvidia_amd.json")
    )

    assert profile.hostname == os.uname().nodename
    assert profile.agent_version == version("ozwald")
    assert before - 1 <= profile.collected_at.ToDatetime().timestamp() <= time.time() + 1
    assert profile.collection_duration.ToNanoseconds() > 0
    assert profile.cpu.logical_cores == os.cpu_count()
    assert profile.memory.total_bytes > 0
    assert profile.state_disk.path == str(tmp_path / "state")
    assert profile.state_disk.total_bytes > 0
    assert profile.operating_system.kernel_release == os.uname().release
    assert [r.vendor for r in profile.gpu_vendors] == [
        gpu_pb2.GPU_VENDOR_NVIDIA,
        gpu_pb2.GPU_VENDOR_AMD,
    ]
    assert all(r.present for r in profile.gpu_vendors)


def test_an_unreachable_engine_is_a_fact_in_the_profile(tmp_path: Path) -> None:
    profile = collect_host_profile(tmp_path, sources=sources())

    runtime = profile.container_runtime
    assert not runtime.reachable
    assert runtime.endpoint == f"unix://{tmp_path}/no-docker.sock"
    assert (
        runtime.unreachable_reason
        == container_runtime_pb2.CONTAINER_RUNTIME_UNREACHABLE_REASON_SOCKET_MISSING
    )


def test_a_detector_bug_costs_only_its_vendors_report() -> None:
    replay = sources()
    broken = type(replay)(
        nvml=ExplodingNvml({"init": {"value": None}}),
        amdsmi=replay.amdsmi,
        sysfs_root=replay.sysfs_root,
        dev_root=replay.dev_root,
    )

    nvidia, amd = detect_gpus(broken)

    assert nvidia.absence_reason == gpu_pb2.GPU_ABSENCE_REASON_LIBRARY_ERROR
    assert "RuntimeError: adapter bug" in nvidia.detail
    assert amd.absence_reason == gpu_pb2.GPU_ABSENCE_REASON_NO_DEVICES


def test_simulated_reports_say_where_they_come_from() -> None:
    path = FIXTURES / "cpu_only.json"

    nvidia, amd = detect_gpus(load_snapshot(path))

    for report in (nvidia, amd):
        assert f"[simulated from hardware snapshot {path} (recorded with" in report.detail
