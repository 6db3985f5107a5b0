"""NVIDIA GPUs through NVML."""

from __future__ import annotations

import logging
from collections.abc import Callable

from ozwald.common.v1 import gpu_pb2

from ozwald_agent.hardware.attempt import attempt
from ozwald_agent.hardware.library_error import IMPORT_MODULE_MISSING, LibraryCallError
from ozwald_agent.hardware.nvml_library import NvmlLibrary
from ozwald_agent.hardware.pci import normalize_pci_bus_id

logger = logging.getLogger(__name__)

_REASONS: dict[str, gpu_pb2.GpuAbsenceReason.ValueType] = {
    IMPORT_MODULE_MISSING: gpu_pb2.GPU_ABSENCE_REASON_LIBRARY_MISSING,
    "NVML_ERROR_LIBRARY_NOT_FOUND": gpu_pb2.GPU_ABSENCE_REASON_NO_DRIVER,
    "NVML_ERROR_DRIVER_NOT_LOADED": gpu_pb2.GPU_ABSENCE_REASON_NO_DRIVER,
    "NVML_ERROR_NO_PERMISSION": gpu_pb2.GPU_ABSENCE_REASON_PERMISSION_DENIED,
}
_HINTS: dict[gpu_pb2.GpuAbsenceReason.ValueType, str] = {
    gpu_pb2.GPU_ABSENCE_REASON_LIBRARY_MISSING: "install nvidia-ml-py in the agent's environment",
    gpu_pb2.GPU_ABSENCE_REASON_NO_DRIVER: "no NVIDIA driver is installed or loaded on this host",
    gpu_pb2.GPU_ABSENCE_REASON_PERMISSION_DENIED: (
        "the agent's user may not open /dev/nvidia*; run it as root or fix the device modes"
    ),
}
_MIG_MODES = {0: gpu_pb2.MIG_MODE_DISABLED, 1: gpu_pb2.MIG_MODE_ENABLED}


def nvml_absence_reason(code: str) -> gpu_pb2.GpuAbsenceReason.ValueType:
    """The absence reason an NVML failure (or the binding's import failure) stands for."""
    return _REASONS.get(code, gpu_pb2.GPU_ABSENCE_REASON_LIBRARY_ERROR)


def format_cuda_version(version: int) -> str:
    """NVML's CUDA driver version number as "major.minor": 12040 -> "12.4"."""
    return f"{version // 1000}.{version % 1000 // 10}" if version > 0 else ""


class NvidiaDetector:
    """Reports NVIDIA GPUs, or why there are none; always shuts NVML down after it started."""

    def __init__(self, nvml: NvmlLibrary) -> None:
        self._nvml = nvml

    def available(self) -> bool:
        try:
            self._nvml.init()
        except LibraryCallError:
            return False
        self._shutdown()
        return True

    def detect(self) -> gpu_pb2.GpuVendorReport:
        report = gpu_pb2.GpuVendorReport(vendor=gpu_pb2.GPU_VENDOR_NVIDIA, detection_method="nvml")
        try:
            self._nvml.init()
        except LibraryCallError as e:
            _mark_absent(report, e, "NVML cannot start")
            return report
        try:
            self._inspect(report)
        finally:
            self._shutdown()
        return report

    def _inspect(self, report: gpu_pb2.GpuVendorReport) -> None:
        warn = report.warnings.append
        report.driver_version = attempt(self._nvml.driver_version, warn, "driver version") or ""
        cuda = attempt(self._nvml.cuda_driver_version, warn, "CUDA version")
        report.cuda_version = format_cuda_version(cuda or 0)
        try:
            count = self._nvml.device_count()
        except LibraryCallError as e:
            _mark_absent(report, e, "NVML cannot count the GPUs")
            return
        if count == 0:
            report.absence_reason = gpu_pb2.GPU_ABSENCE_REASON_NO_DEVICES
            report.detail = "NVML and the NVIDIA driver answer, but they see no GPU"
            return
        unreadable: list[LibraryCallError] = []
        for index in range(count):
            try:
                uuid = self._nvml.device_uuid(index)
            except LibraryCallError as e:
                # Containers are pinned by UUID, so a GPU without one cannot be offered.
                warn(f"GPU {index} left out: its UUID cannot be read: {e}")
                unreadable.append(e)
                continue
            report.devices.append(self._device(index, uuid, report))
        if not report.devices:
            _mark_absent(report, unreadable[0], f"NVML lists {count} GPU(s) but none can be read")
            return
        report.present = True
        report.detail = f"NVML sees {count} NVIDIA GPU(s)"
        if unreadable:
            report.detail += f", {len(unreadable)} of them unreadable (see warnings)"

    def _device(self, index: int, uuid: str, report: gpu_pb2.GpuVendorReport) -> gpu_pb2.GpuDevice:
        nvml = self._nvml

        def warn(text: str) -> None:
            report.warnings.append(f"GPU {index}: {text}")

        device = gpu_pb2.GpuDevice(vendor=gpu_pb2.GPU_VENDOR_NVIDIA, index=index, uuid=uuid)
        device.name = attempt(lambda: nvml.device_name(index), warn, "name") or ""
        bus_id = attempt(lambda: nvml.device_pci_bus_id(index), warn, "PCI bus id")
        device.pci_bus_id = normalize_pci_bus_id(bus_id or "")
        memory = attempt(lambda: nvml.device_memory(index), warn, "memory")
        if memory is not None:
            device.memory_total_bytes = memory.total
            device.memory_used_bytes = memory.used
            device.memory_free_bytes = memory.free
        capability = attempt(lambda: nvml.device_compute_capability(index), warn, "capability")
        if capability is not None:
            device.compute_capability = f"{capability[0]}.{capability[1]}"
        self._fill_mig(device, warn)
        processes = attempt(lambda: nvml.device_compute_processes(index), warn, "processes")
        for process in processes or []:
            device.processes.add(pid=process.pid, used_memory_bytes=process.used_bytes or 0)
        return device

    def _fill_mig(self, device: gpu_pb2.GpuDevice, warn: Callable[[str], None]) -> None:
        try:
            current, pending = self._nvml.device_mig_mode(device.index)
        except LibraryCallError as e:
            if e.code == "NVML_ERROR_NOT_SUPPORTED":
                device.mig_mode = device.mig_mode_pending = gpu_pb2.MIG_MODE_NOT_SUPPORTED
            else:
                warn(f"MIG mode: {e}")
            return
        device.mig_mode = _MIG_MODES.get(current, gpu_pb2.MIG_MODE_UNSPECIFIED)
        device.mig_mode_pending = _MIG_MODES.get(pending, gpu_pb2.MIG_MODE_UNSPECIFIED)

    def _shutdown(self) -> None:
        try:
            self._nvml.shutdown()
        except LibraryCallError as e:
            logger.warning("nvmlShutdown failed: %s", e)


def _mark_absent(report: gpu_pb2.GpuVendorReport, error: LibraryCallError, context: str) -> None:
    report.absence_reason = nvml_absence_reason(error.code)
    hint = _HINTS.get(report.absence_reason)
    report.detail = f"{context}: {error}" + (f"; {hint}" if hint else "")
