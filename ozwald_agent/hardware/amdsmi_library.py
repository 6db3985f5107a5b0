"""The narrow slice of amdsmi the AMD detector needs, so it can be real or replayed."""

from __future__ import annotations

from typing import Protocol

from ozwald_agent.hardware.library_answers import AmdAsicInfo, ProcessMemory


class AmdSmiLibrary(Protocol):
    """amdsmi calls by GPU index; every method raises only `LibraryCallError`.

    Call `init()` first, `device_count()` before any per-device call, and `shutdown()` after
    a successful `init()`.
    """

    def init(self) -> None: ...

    def shutdown(self) -> None: ...

    def device_count(self) -> int: ...

    def asic_info(self, index: int) -> AmdAsicInfo: ...

    def pci_bus_id(self, index: int) -> str:
        """amdsmi_get_gpu_device_bdf, e.g. "0000:c1:00.0"."""
        ...

    def vram_total_bytes(self, index: int) -> int: ...

    def vram_used_bytes(self, index: int) -> int: ...

    def drm_render_minor(self, index: int) -> int:
        """The N of /dev/dri/renderDN (amdsmi_get_gpu_enumeration_info's drm_render)."""
        ...

    def driver_version(self, index: int) -> str: ...

    def processes(self, index: int) -> list[ProcessMemory]: ...
