"""NvmlLibrary backed by the real NVML through `pynvml` (the nvidia-ml-py package)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

from ozwald_agent.hardware.library_answers import NvmlMemory, ProcessMemory
from ozwald_agent.hardware.library_error import IMPORT_MODULE_MISSING, LibraryCallError

T = TypeVar("T")


class PynvmlLibrary:
    """Translates every pynvml failure into `LibraryCallError` with NVML's error name.

    pynvml is imported on `init()`, not at agent start, so a host without it still profiles.
    """

    def __init__(self) -> None:
        self._nvml: Any = None

    def init(self) -> None:
        try:
            import pynvml  # type: ignore[import-untyped]
        except ImportError as e:
            raise LibraryCallError(IMPORT_MODULE_MISSING, f"cannot import pynvml: {e}") from e
        self._nvml = pynvml
        self._call(pynvml.nvmlInit)

    def shutdown(self) -> None:
        self._call(self._module().nvmlShutdown)

    def driver_version(self) -> str:
        return str(self._call(self._module().nvmlSystemGetDriverVersion))

    def cuda_driver_version(self) -> int:
        return int(self._call(self._module().nvmlSystemGetCudaDriverVersion_v2))

    def device_count(self) -> int:
        return int(self._call(self._module().nvmlDeviceGetCount))

    def device_uuid(self, index: int) -> str:
        return str(self._on_device(index, lambda nvml, h: nvml.nvmlDeviceGetUUID(h)))

    def device_name(self, index: int) -> str:
        return str(self._on_device(index, lambda nvml, h: nvml.nvmlDeviceGetName(h)))

    def device_pci_bus_id(self, index: int) -> str:
        return str(self._on_device(index, lambda nvml, h: nvml.nvmlDeviceGetPciInfo(h).busId))

    def device_memory(self, index: int) -> NvmlMemory:
        # The v1 call counts the driver's reservation as used (nvidia-smi, on v2, does not):
        # free is the same either way, and free is what a workload can have.
        info = self._on_device(index, lambda nvml, h: nvml.nvmlDeviceGetMemoryInfo(h))
        return NvmlMemory(total=int(info.total), free=int(info.free), used=int(info.used))

    def device_compute_capability(self, index: int) -> tuple[int, int]:
        major, minor = self._on_device(
            index, lambda nvml, h: nvml.nvmlDeviceGetCudaComputeCapability(h)
        )
        return int(major), int(minor)

    def device_mig_mode(self, index: int) -> tuple[int, int]:
        current, pending = self._on_device(index, lambda nvml, h: nvml.nvmlDeviceGetMigMode(h))
        return int(current), int(pending)

    def device_compute_processes(self, index: int) -> list[ProcessMemory]:
        processes = self._on_device(
            index, lambda nvml, h: nvml.nvmlDeviceGetComputeRunningProcesses(h)
        )
        return [
            ProcessMemory(
                pid=int(p.pid),
                used_bytes=None if p.usedGpuMemory is None else int(p.usedGpuMemory),
            )
            for p in processes
        ]

    def _module(self) -> ModuleType:
        if self._nvml is None:
            raise LibraryCallError("NVML_ERROR_UNINITIALIZED", "init() was not called")
        module: ModuleType = self._nvml
        return module

    def _on_device(self, index: int, query: Callable[[Any, Any], T]) -> T:
        nvml = self._module()
        return self._call(lambda: query(nvml, nvml.nvmlDeviceGetHandleByIndex(index)))

    def _call(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except Exception as e:
            # pynvml raises NVMLError subclasses, but a broken libnvidia-ml can also surface
            # as OSError or AttributeError from ctypes; none of them may escape a detector.
            raise LibraryCallError(_error_code(self._nvml, e), str(e)) from e


def _error_code(nvml: Any, error: Exception) -> str:
    value = getattr(error, "value", None)
    if nvml is not None and isinstance(error, nvml.NVMLError) and isinstance(value, int):
        for name in dir(nvml):
            if name.startswith("NVML_ERROR_") and getattr(nvml, name) == value:
                return name
        return f"NVML_ERROR_{value}"
    return type(error).__name__
