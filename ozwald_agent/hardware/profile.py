"""The host profile: everything this host offers, collected in one call."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from ozwald.common.v1 import gpu_pb2, host_profile_pb2

from ozwald_agent.hardware.amd_detector import AmdDetector
from ozwald_agent.hardware.amd_sysfs import AmdSysfs
from ozwald_agent.hardware.container_runtime import detect_container_runtime
from ozwald_agent.hardware.cpu import collect_cpu
from ozwald_agent.hardware.detector import GpuDetector
from ozwald_agent.hardware.disk import collect_state_disk
from ozwald_agent.hardware.memory import collect_memory
from ozwald_agent.hardware.nvidia_detector import NvidiaDetector
from ozwald_agent.hardware.operating_system import collect_operating_system
from ozwald_agent.hardware.sources import HardwareSources
from ozwald_sdk.version import ozwald_version

logger = logging.getLogger(__name__)

# NVML and amdsmi keep process-wide state between init and shutdown; concurrent profile
# requests (several watch streams) take turns rather than shut a library down mid-use.
_GPU_LIBRARIES = threading.Lock()


def collect_host_profile(
    state_dir: Path, *, sources: HardwareSources | None = None
) -> host_profile_pb2.HostProfile:
    """Profiles this host; the GPUs come from `sources` (this host's own by default).

    GPU libraries, drivers and the Docker Engine never make this raise: each problem is a
    reported fact with its reason.
    """
    started = time.monotonic()
    hardware = sources or HardwareSources.real()
    profile = host_profile_pb2.HostProfile(
        hostname=os.uname().nodename,
        cpu=collect_cpu(),
        memory=collect_memory(),
        state_disk=collect_state_disk(state_dir),
        container_runtime=detect_container_runtime(),
        operating_system=collect_operating_system(),
        agent_version=ozwald_version(),
    )
    profile.gpu_vendors.extend(detect_gpus(hardware))
    profile.collection_duration.FromNanoseconds(int((time.monotonic() - started) * 1e9))
    profile.collected_at.GetCurrentTime()
    return profile


def detect_gpus(sources: HardwareSources) -> list[gpu_pb2.GpuVendorReport]:
    """One report per supported vendor, NVIDIA then AMD, each present or absent with a reason."""
    detectors: list[tuple[gpu_pb2.GpuVendor.ValueType, GpuDetector]] = [
        (gpu_pb2.GPU_VENDOR_NVIDIA, NvidiaDetector(sources.nvml)),
        (
            gpu_pb2.GPU_VENDOR_AMD,
            AmdDetector(sources.amdsmi, AmdSysfs(sources.sysfs_root, sources.dev_root)),
        ),
    ]
    with _GPU_LIBRARIES:
        return [
            _vendor_report(vendor, detector, sources.simulated_from)
            for vendor, detector in detectors
        ]


def _vendor_report(
    vendor: gpu_pb2.GpuVendor.ValueType, detector: GpuDetector, simulated_from: str
) -> gpu_pb2.GpuVendorReport:
    try:
        report = detector.detect()
    except Exception as e:
        # A detector bug (say, a library answering in a shape never seen) must cost only
        # that vendor's report, never the whole profile.
        logger.exception("GPU detection failed for %s", gpu_pb2.GpuVendor.Name(vendor))
        report = gpu_pb2.GpuVendorReport(
            vendor=vendor,
            absence_reason=gpu_pb2.GPU_ABSENCE_REASON_LIBRARY_ERROR,
            detail=f"detection failed unexpectedly: {type(e).__name__}: {e}",
        )
    if simulated_from:
        report.detail = f"{report.detail} [simulated from hardware snapshot {simulated_from}]"
    return report
