"""The NVIDIA detector's own logic: error mapping, formatting, and NVML's init/shutdown pairing."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from ozwald.common.v1 import gpu_pb2

from ozwald_agent.hardware.nvidia_detector import (
    NvidiaDetector,
    format_cuda_version,
    nvml_absence_reason,
)
from ozwald_agent.hardware.nvml_replay import ReplayNvmlLibrary
from ozwald_agent.hardware.pci import normalize_pci_bus_id
from tests.unit.hardware.snapshots import error, nvml, nvml_device, value


class CountingNvml(ReplayNvmlLibrary):
    """A replayed NVML that counts how often it was started and shut down."""

    def __init__(self, section: Mapping[str, object]) -> None:
        super().__init__(section)
        self.inits = 0
        self.shutdowns = 0

    def init(self) -> None:
        super().init()
        self.inits += 1

    def shutdown(self) -> None:
        self.shutdowns += 1


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("IMPORT_MODULE_MISSING", gpu_pb2.GPU_ABSENCE_REASON_LIBRARY_MISSING),
        ("NVML_ERROR_LIBRARY_NOT_FOUND", gpu_pb2.GPU_ABSENCE_REASON_NO_DRIVER),
        ("NVML_ERROR_DRIVER_NOT_LOADED", gpu_pb2.GPU_ABSENCE_REASON_NO_DRIVER),
        ("NVML_ERROR_NO_PERMISSION", gpu_pb2.GPU_ABSENCE_REASON_PERMISSION_DENIED),
        ("NVML_ERROR_UNKNOWN", gpu_pb2.GPU_ABSENCE_REASON_LIBRARY_ERROR),
        ("OSError", gpu_pb2.GPU_ABSENCE_REASON_LIBRARY_ERROR),
    ],
)
def test_an_nvml_start_failure_maps_to_its_reason(
    code: str, reason: gpu_pb2.GpuAbsenceReason.ValueType
) -> None:
    library = CountingNvml({"init": error(code, "the words NVML used")})

    report = NvidiaDetector(library).detect()

    assert nvml_absence_reason(code) == reason
    assert report.absence_reason == reason
    assert not report.present
    assert f"the words NVML used ({code})" in report.detail
    assert library.shutdowns == 0, "nvmlShutdown without a successful nvmlInit"


@pytest.mark.parametrize(
    ("version", "text"),
    [(12040, "12.4"), (11080, "11.8"), (12090, "12.9"), (13000, "13.0"), (0, "")],
)
def test_the_cuda_driver_version_is_written_major_dot_minor(version: int, text: str) -> None:
    assert format_cuda_version(version) == text


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("00000000:4C:00.0", "0000:4c:00.0"),
        ("00000001:17:00.0", "0001:17:00.0"),
        ("0000:c1:00.0", "0000:c1:00.0"),
        ("not a bus id", "not a bus id"),
    ],
)
def test_pci_bus_ids_are_written_as_sysfs_does(raw: str, normal: str) -> None:
    assert normalize_pci_bus_id(raw) == normal


def test_nvml_is_shut_down_once_after_a_full_detection() -> None:
    library = CountingNvml(nvml(nvml_device()))

    report = NvidiaDetector(library).detect()

    assert report.present
    assert (library.inits, library.shutdowns) == (1, 1)


def test_nvml_is_shut_down_when_counting_the_gpus_fails() -> None:
    library = CountingNvml(nvml(count=error("NVML_ERROR_DRIVER_NOT_LOADED")))

    report = NvidiaDetector(library).detect()

    assert report.absence_reason == gpu_pb2.GPU_ABSENCE_REASON_NO_DRIVER
    assert report.detail.startswith("NVML cannot count the GPUs")
    assert library.shutdowns == 1


def test_a_driver_without_gpus_reports_no_devices() -> None:
    report = NvidiaDetector(CountingNvml(nvml())).detect()

    assert report.absence_reason == gpu_pb2.GPU_ABSENCE_REASON_NO_DEVICES
    assert report.driver_version == "550.54.15"
    assert report.cuda_version == "12.4"


def test_a_failing_device_query_keeps_the_device_with_a_warning() -> None:
    device = nvml_device(memory=error("NVML_ERROR_UNKNOWN", "Unknown Error"))

    report = NvidiaDetector(CountingNvml(nvml(device))).detect()

    assert report.present
    assert report.devices[0].memory_total_bytes == 0
    assert report.devices[0].compute_capability == "9.0"
    assert list(report.warnings) == ["GPU 0: memory: Unknown Error (NVML_ERROR_UNKNOWN)"]


def test_mig_not_supported_is_a_fact_but_another_mig_failure_is_a_warning() -> None:
    consumer = nvml_device(mig_mode=error("NVML_ERROR_NOT_SUPPORTED", "Not Supported"))
    broken = nvml_device(mig_mode=error("NVML_ERROR_UNKNOWN", "Unknown Error"))

    report = NvidiaDetector(CountingNvml(nvml(consumer, broken))).detect()

    modes = [(d.mig_mode, d.mig_mode_pending) for d in report.devices]
    assert modes == [
        (gpu_pb2.MIG_MODE_NOT_SUPPORTED, gpu_pb2.MIG_MODE_NOT_SUPPORTED),
        (gpu_pb2.MIG_MODE_UNSPECIFIED, gpu_pb2.MIG_MODE_UNSPECIFIED),
    ]
    assert list(report.warnings) == ["GPU 1: MIG mode: Unknown Error (NVML_ERROR_UNKNOWN)"]


def test_system_facts_that_fail_are_warnings() -> None:
    section = nvml(nvml_device()) | {"cuda_driver_version": error("NVML_ERROR_FUNCTION_NOT_FOUND")}

    report = NvidiaDetector(CountingNvml(section)).detect()

    assert report.present
    assert report.cuda_version == ""
    assert list(report.warnings) == ["CUDA version: it failed (NVML_ERROR_FUNCTION_NOT_FOUND)"]


def test_when_no_gpu_can_be_read_the_reason_is_the_reads_failure() -> None:
    lost = nvml_device(uuid=error("NVML_ERROR_NO_PERMISSION", "Insufficient Permissions"))

    report = NvidiaDetector(CountingNvml(nvml(lost))).detect()

    assert not report.devices
    assert report.absence_reason == gpu_pb2.GPU_ABSENCE_REASON_PERMISSION_DENIED
    assert report.detail.startswith("NVML lists 1 GPU(s) but none can be read")


def test_available_starts_and_stops_nvml() -> None:
    working = CountingNvml({"init": value(None)})
    failing = CountingNvml({"init": error("NVML_ERROR_LIBRARY_NOT_FOUND")})

    assert NvidiaDetector(working).available()
    assert not NvidiaDetector(failing).available()
    assert (working.inits, working.shutdowns) == (1, 1)
    assert failing.shutdowns == 0
