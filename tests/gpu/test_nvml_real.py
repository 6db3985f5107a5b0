"""The NVIDIA detector against a real GPU host's NVML (`make gpu-check`)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pynvml  # type: ignore[import-untyped]
import pytest
from ozwald.common.v1 import gpu_pb2

from ozwald_agent.hardware.nvidia_detector import NvidiaDetector
from ozwald_agent.hardware.nvml_real import PynvmlLibrary
from ozwald_agent.hardware.profile import collect_host_profile
from ozwald_agent.hardware.snapshot import load_snapshot, record_snapshot

pytestmark = pytest.mark.gpu


@pytest.fixture
def nvml() -> Iterator[Any]:
    """pynvml itself, as the ground truth; NVML counts inits, so the detector may init too."""
    pynvml.nvmlInit()
    yield pynvml
    pynvml.nvmlShutdown()


def test_detector_reports_every_gpu_nvml_sees(nvml: Any) -> None:
    report = NvidiaDetector(PynvmlLibrary()).detect()

    assert report.present, report.detail
    assert report.absence_reason == gpu_pb2.GPU_ABSENCE_REASON_UNSPECIFIED
    assert len(report.devices) == nvml.nvmlDeviceGetCount() > 0
    assert report.driver_version == nvml.nvmlSystemGetDriverVersion()
    assert re.fullmatch(r"\d+\.\d", report.cuda_version), report.cuda_version
    for device in report.devices:
        handle = nvml.nvmlDeviceGetHandleByIndex(device.index)
        assert device.uuid.startswith("GPU-")
        assert device.uuid == nvml.nvmlDeviceGetUUID(handle)
        assert device.name == nvml.nvmlDeviceGetName(handle)
        assert device.memory_total_bytes == nvml.nvmlDeviceGetMemoryInfo(handle).total
        major, minor = nvml.nvmlDeviceGetCudaComputeCapability(handle)
        assert device.compute_capability == f"{major}.{minor}"
        assert device.pci_bus_id.endswith(nvml.nvmlDeviceGetPciInfo(handle).busId[-7:].lower())


def test_detector_is_available_on_a_gpu_host() -> None:
    assert NvidiaDetector(PynvmlLibrary()).available()


def test_recorded_snapshot_replays_to_the_live_devices(tmp_path: Path) -> None:
    live = NvidiaDetector(PynvmlLibrary()).detect()
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text(json.dumps(record_snapshot()))

    replayed = NvidiaDetector(load_snapshot(snapshot).nvml).detect()

    assert _stable(replayed) == _stable(live)
    assert len(replayed.devices) == len(live.devices) > 0


def test_host_profile_reports_the_gpus_beside_amd(tmp_path: Path) -> None:
    profile = collect_host_profile(tmp_path / "state")

    vendors = {report.vendor: report for report in profile.gpu_vendors}
    assert set(vendors) == {gpu_pb2.GPU_VENDOR_NVIDIA, gpu_pb2.GPU_VENDOR_AMD}
    assert vendors[gpu_pb2.GPU_VENDOR_NVIDIA].present
    assert len(vendors[gpu_pb2.GPU_VENDOR_NVIDIA].devices) > 0


def _stable(report: gpu_pb2.GpuVendorReport) -> list[tuple[object, ...]]:
    """What cannot change between two reads a moment apart (memory in use and processes can)."""
    return [
        (
            d.index,
            d.uuid,
            d.name,
            d.pci_bus_id,
            d.memory_total_bytes,
            d.compute_capability,
            d.mig_mode,
            d.mig_mode_pending,
            report.driver_version,
            report.cuda_version,
        )
        for d in report.devices
    ]
