"""The narrow slice of NVML the NVIDIA detector needs, so it can be real or replayed."""

from __future__ import annotations

from typing import Protocol

from ozwald_agent.hardware.library_answers import NvmlMemory, ProcessMemory


class NvmlLibrary(Protocol):
    """NVML calls by device index; every method raises only `LibraryCallError`.

    Call `init()` first and `shutdown()` after a successful `init()`.
    """

    def init(self) -> None: ...

    def shutdown(self) -> None: ...

    def driver_version(self) -> str: ...

    def cuda_driver_version(self) -> int:
        """nvmlSystemGetCudaDriverVersion_v2, e.g. 12040 for CUDA 12.4."""
        ...

    def device_count(self) -> int: ...

    def device_uuid(self, index: int) -> str: ...

    def device_name(self, index: int) -> str: ...

    def device_pci_bus_id(self, index: int) -> str: ...

    def device_memory(self, index: int) -> NvmlMemory: ...

    def device_compute_capability(self, index: int) -> tuple[int, int]: ...

    def device_mig_mode(self, index: int) -> tuple[int, int]:
        """(current, pending), each NVML_DEVICE_MIG_DISABLE (0) or NVML_DEVICE_MIG_ENABLE (1)."""
        ...

    def device_compute_processes(self, index: int) -> list[ProcessMemory]: ...
