"""Host profiles as real agents report them: a CPU-only box and an 8-GPU H100 server."""

from __future__ import annotations

import datetime

import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from ozwald.common.v1 import container_runtime_pb2 as runtime_pb2
from ozwald.common.v1 import gpu_pb2
from ozwald.common.v1.host_profile_pb2 import (
    CpuInfo,
    DiskInfo,
    HostProfile,
    MemoryInfo,
    OperatingSystemInfo,
)

GIB = 1024**3
COLLECTED_AT = datetime.datetime(2026, 11, 27, 4, 50, 12, tzinfo=datetime.UTC)


def _base(hostname: str) -> HostProfile:
    collected_at = Timestamp()
    collected_at.FromDatetime(COLLECTED_AT)
    return HostProfile(
        hostname=hostname,
        collected_at=collected_at,
        collection_duration=Duration(nanos=420_000_000),
        operating_system=OperatingSystemInfo(
            kernel_name="Linux",
            kernel_release="6.1.0-18-amd64",
            distribution="Debian GNU/Linux 12 (bookworm)",
        ),
        agent_version="0.1.0",
        state_disk=DiskInfo(
            path="/var/lib/ozwald/agent",
            total_bytes=500 * GIB,
            used_bytes=120 * GIB,
            free_bytes=380 * GIB,
        ),
    )


@pytest.fixture
def cpu_only_profile() -> HostProfile:
    profile = _base("build-box")
    profile.cpu.CopyFrom(
        CpuInfo(
            model="Intel(R) Xeon(R) Processor @ 2.20GHz",
            logical_cores=2,
            physical_cores=1,
            usable_cores=2,
            load_average_1m=0.25,
            load_average_5m=0.5,
            load_average_15m=0.75,
            architecture="x86_64",
        )
    )
    profile.memory.CopyFrom(
        MemoryInfo(total_bytes=24 * GIB, available_bytes=18 * GIB, swap_total_bytes=0)
    )
    profile.container_runtime.CopyFrom(
        runtime_pb2.ContainerRuntimeInfo(
            kind="docker",
            endpoint="unix:///var/run/docker.sock",
            reachable=False,
            unreachable_reason=runtime_pb2.CONTAINER_RUNTIME_UNREACHABLE_REASON_SOCKET_MISSING,
            detail="Error while fetching server API version: ('Connection aborted.', "
            "FileNotFoundError(2, 'No such file or directory'))",
        )
    )
    profile.gpu_vendors.extend(
        [
            gpu_pb2.GpuVendorReport(
                vendor=gpu_pb2.GPU_VENDOR_NVIDIA,
                absence_reason=gpu_pb2.GPU_ABSENCE_REASON_NO_DRIVER,
                detail="NVML Shared Library Not Found",
                detection_method="nvml",
            ),
            gpu_pb2.GpuVendorReport(
                vendor=gpu_pb2.GPU_VENDOR_AMD,
                absence_reason=gpu_pb2.GPU_ABSENCE_REASON_LIBRARY_MISSING,
                detail="No module named 'amdsmi'; sysfs: no /dev/kfd",
            ),
        ]
    )
    return profile


@pytest.fixture
def eight_gpu_profile() -> HostProfile:
    profile = _base("gpu-box-with-a-rather-long-hostname-01.datacenter.example.com")
    profile.cpu.CopyFrom(
        CpuInfo(
            model="AMD EPYC 9654 96-Core Processor",
            logical_cores=384,
            physical_cores=192,
            usable_cores=384,
            architecture="x86_64",
        )
    )
    profile.memory.CopyFrom(
        MemoryInfo(total_bytes=2048 * GIB, available_bytes=1900 * GIB, swap_total_bytes=8 * GIB)
    )
    profile.container_runtime.CopyFrom(
        runtime_pb2.ContainerRuntimeInfo(
            kind="docker",
            endpoint="unix:///var/run/docker.sock",
            reachable=True,
            engine_version="26.1.4",
            api_version="1.45",
            storage_driver="overlay2",
            cgroup_driver="systemd",
            cgroup_version="2",
            runtimes=["io.containerd.runc.v2", "nvidia", "runc"],
            nvidia_runtime_available=True,
            cdi_devices=[f"nvidia.com/gpu={i}" for i in range(8)],
        )
    )
    devices = [
        gpu_pb2.GpuDevice(
            vendor=gpu_pb2.GPU_VENDOR_NVIDIA,
            index=i,
            uuid=f"GPU-{i:08x}-1111-2222-3333-444455556666",
            name="NVIDIA H100 80GB HBM3",
            memory_total_bytes=81559 * 1024**2,
            memory_used_bytes=(70 * GIB) if i < 2 else 512 * 1024**2,
            compute_capability="9.0",
            mig_mode=gpu_pb2.MIG_MODE_DISABLED,
            mig_mode_pending=gpu_pb2.MIG_MODE_ENABLED if i == 7 else gpu_pb2.MIG_MODE_DISABLED,
            processes=[gpu_pb2.GpuProcess(pid=1000 + i, used_memory_bytes=70 * GIB)]
            if i < 2
            else [],
        )
        for i in range(8)
    ]
    profile.gpu_vendors.extend(
        [
            gpu_pb2.GpuVendorReport(
                vendor=gpu_pb2.GPU_VENDOR_NVIDIA,
                present=True,
                detection_method="nvml",
                driver_version="550.54.15",
                cuda_version="12.4",
                devices=devices,
                warnings=["GPU 3: process list not readable (insufficient permissions)"],
            ),
            gpu_pb2.GpuVendorReport(
                vendor=gpu_pb2.GPU_VENDOR_AMD,
                absence_reason=gpu_pb2.GPU_ABSENCE_REASON_NO_DRIVER,
                detail="amdgpu kernel module not loaded (no /dev/kfd)",
            ),
        ]
    )
    return profile
