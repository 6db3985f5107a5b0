"""amdsmi answers in a hardware snapshot: recording them from a live library, replaying them.

The snapshot's "amdsmi" object holds one answer per call (see `recorded`): "init",
"device_count", and "devices", a list with one object per GPU index holding "asic_info"
({"market_name", "device_id", "asic_serial"} as amdsmi formats them, "N/A" included),
"pci_bus_id", "vram_total_bytes", "vram_used_bytes", "drm_render_minor", "driver_version"
and "processes" ([{"pid", "used_bytes"}]).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from ozwald_agent.hardware.amdsmi_library import AmdSmiLibrary
from ozwald_agent.hardware.library_answers import AmdAsicInfo, ProcessMemory
from ozwald_agent.hardware.library_error import NOT_RECORDED, LibraryCallError
from ozwald_agent.hardware.recorded import (
    Recorded,
    as_int,
    as_list,
    as_mapping,
    as_none,
    as_str,
    capture,
    check_keys,
    count_of,
    decode,
    encode_processes,
    parse_processes,
)


@dataclass(frozen=True)
class _Device:
    asic_info: Recorded[AmdAsicInfo]
    pci_bus_id: Recorded[str]
    vram_total_bytes: Recorded[int]
    vram_used_bytes: Recorded[int]
    drm_render_minor: Recorded[int]
    driver_version: Recorded[str]
    processes: Recorded[list[ProcessMemory]]


_DEVICE_CALLS = {field.name for field in dataclasses.fields(_Device)}
_SYSTEM_CALLS = {"init", "device_count", "devices"}


class ReplayAmdSmiLibrary:
    """Answers amdsmi calls from a snapshot's "amdsmi" object; malformed input fails in __init__."""

    def __init__(self, section: Mapping[str, object], where: str = "amdsmi") -> None:
        check_keys(section, _SYSTEM_CALLS, where)
        self._init = decode(section, "init", as_none, where)
        self._device_count = decode(section, "device_count", as_int, where)
        devices = as_list(section.get("devices", []), f"{where}.devices")
        self._devices = [_decode_device(d, f"{where}.devices[{i}]") for i, d in enumerate(devices)]

    def init(self) -> None:
        self._init.get()

    def shutdown(self) -> None:
        """A replay holds nothing to release."""

    def device_count(self) -> int:
        return self._device_count.get()

    def asic_info(self, index: int) -> AmdAsicInfo:
        return self._device(index).asic_info.get()

    def pci_bus_id(self, index: int) -> str:
        return self._device(index).pci_bus_id.get()

    def vram_total_bytes(self, index: int) -> int:
        return self._device(index).vram_total_bytes.get()

    def vram_used_bytes(self, index: int) -> int:
        return self._device(index).vram_used_bytes.get()

    def drm_render_minor(self, index: int) -> int:
        return self._device(index).drm_render_minor.get()

    def driver_version(self, index: int) -> str:
        return self._device(index).driver_version.get()

    def processes(self, index: int) -> list[ProcessMemory]:
        return self._device(index).processes.get()

    def _device(self, index: int) -> _Device:
        if not 0 <= index < len(self._devices):
            raise LibraryCallError(NOT_RECORDED, f"the snapshot has no amdsmi GPU {index}")
        return self._devices[index]


def _decode_device(value: object, where: str) -> _Device:
    device = as_mapping(value, where)
    check_keys(device, _DEVICE_CALLS, where)
    return _Device(
        asic_info=decode(device, "asic_info", _parse_asic_info, where),
        pci_bus_id=decode(device, "pci_bus_id", as_str, where),
        vram_total_bytes=decode(device, "vram_total_bytes", as_int, where),
        vram_used_bytes=decode(device, "vram_used_bytes", as_int, where),
        drm_render_minor=decode(device, "drm_render_minor", as_int, where),
        driver_version=decode(device, "driver_version", as_str, where),
        processes=decode(device, "processes", parse_processes, where),
    )


def _parse_asic_info(value: object, where: str) -> AmdAsicInfo:
    fields = as_mapping(value, where)
    check_keys(fields, {"market_name", "device_id", "asic_serial"}, where)
    return AmdAsicInfo(
        market_name=as_str(fields.get("market_name"), f"{where}.market_name"),
        device_id=as_str(fields.get("device_id"), f"{where}.device_id"),
        asic_serial=as_str(fields.get("asic_serial"), f"{where}.asic_serial"),
    )


def record_amdsmi(amdsmi: AmdSmiLibrary) -> dict[str, object]:
    """Asks a live amdsmi everything the AMD detector asks, and keeps the answers."""
    init = capture(amdsmi.init, lambda _: None)
    section: dict[str, object] = {"init": init}
    if "error" in init:
        return section
    try:
        count = capture(amdsmi.device_count, int)
        section["device_count"] = count
        section["devices"] = [_record_device(amdsmi, i) for i in range(count_of(count))]
    finally:
        with contextlib.suppress(LibraryCallError):
            amdsmi.shutdown()
    return section


def _record_device(amdsmi: AmdSmiLibrary, index: int) -> dict[str, object]:
    return {
        "asic_info": capture(lambda: amdsmi.asic_info(index), dataclasses.asdict),
        "pci_bus_id": capture(lambda: amdsmi.pci_bus_id(index), str),
        "vram_total_bytes": capture(lambda: amdsmi.vram_total_bytes(index), int),
        "vram_used_bytes": capture(lambda: amdsmi.vram_used_bytes(index), int),
        "drm_render_minor": capture(lambda: amdsmi.drm_render_minor(index), int),
        "driver_version": capture(lambda: amdsmi.driver_version(index), str),
        "processes": capture(lambda: amdsmi.processes(index), encode_processes),
    }
