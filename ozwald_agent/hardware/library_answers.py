"""Plain values the vendor library adapters return, shared by real and replayed libraries."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NvmlMemory:
    """nvmlDeviceGetMemoryInfo: device memory in bytes."""

    total: int
    free: int
    used: int


@dataclass(frozen=True)
class ProcessMemory:
    """A process holding device memory; `used_bytes` is None when the driver does not say."""

    pid: int
    used_bytes: int | None


@dataclass(frozen=True)
class AmdAsicInfo:
    """The part of amdsmi_get_gpu_asic_info the agent uses, as amdsmi formats it.

    amdsmi writes "N/A" for what the device does not report.
    """

    market_name: str
    device_id: str
    asic_serial: str
