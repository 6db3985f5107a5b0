"""NVML answers in a hardware snapshot: recording them from a live NvmlLibrary, replaying them.

The snapshot's "nvml" object holds one answer per call (see `recorded`): "init",
"driver_version", "cuda_driver_version", "device_count", and "devices", a list with one
object per device index holding "uuid", "name", "pci_bus_id", "memory" ({"total", "free",
"used"} in bytes), "compute_capability" ([major, minor]), "mig_mode" ([current, pending])
and "compute_processes" ([{"pid", "used_bytes"}], used_bytes null when NVML does not say).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from ozwald_agent.hardware.library_answers import NvmlMemory, ProcessMemory
from ozwald_agent.hardware.library_error import NOT_RECORDED, LibraryCallError
from ozwald_agent.hardware.nvml_library import NvmlLibrary
from ozwald_agent.hardware.recorded import (
    Recorded,
    as_int,
    as_int_pair,
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
    uuid: Recorded[str]
    name: Recorded[str]
    pci_bus_id: Recorded[str]
    memory: Recorded[NvmlMemory]
    compute_capability: Recorded[tuple[int, int]]
    mig_mode: Recorded[tuple[int, int]]
    compute_processes: Recorded[list[ProcessMemory]]


_DEVICE_CALLS = {field.name for field in dataclasses.fields(_Device)}
_SYSTEM_CALLS = {"init", "driver_version", "cuda_driver_version", "device_count", "devices"}


class ReplayNvmlLibrary:
    """Answers NVML calls from a snapshot's "nvml" object; malformed input fails in __init__."""

    def __init__(self, section: Mapping[str, object], where: str = "nvml") -> None:
        check_keys(section, _SYSTEM_CALLS, where)
        self._init = decode(section, "init", as_none, where)
        self._driver_version = decode(section, "driver_version", as_str, where)
        self._cuda_driver_version = decode(section, "cuda_driver_version", as_int, where)
        self._device_count = decode(section, "device_count", as_int, where)
        devices = as_list(section.get("devices", []), f"{where}.devices")
        self._devices = [_decode_device(d, f"{where}.devices[{i}]") for i, d in enumerate(devices)]

    def init(self) -> None:
        self._init.get()

    def shutdown(self) -> None:
        """A replay holds nothing to release."""

    def driver_version(self) -> str:
        return self._driver_version.get()

    def cuda_driver_version(self) -> int:
        return self._cuda_driver_version.get()

    def device_count(self) -> int:
        return self._device_count.get()

    def device_uuid(self, index: int) -> str:
        return self._device(index).uuid.get()

    def device_name(self, index: int) -> str:
        return self._device(index).name.get()

    def device_pci_bus_id(self, index: int) -> str:
        return self._device(index).pci_bus_id.get()

    def device_memory(self, index: int) -> NvmlMemory:
        return self._device(index).memory.get()

    def device_compute_capability(self, index: int) -> tuple[int, int]:
        return self._device(index).compute_capability.get()

    def device_mig_mode(self, index: int) -> tuple[int, int]:
        return self._device(index).mig_mode.get()

    def device_compute_processes(self, index: int) -> list[ProcessMemory]:
        return self._device(index).compute_processes.get()

    def _device(self, index: int) -> _Device:
        if not 0 <= index < len(self._devices):
            raise LibraryCallError(NOT_RECORDED, f"the snapshot has no NVML device {index}")
        return self._devices[index]


def _decode_device(value: object, where: str) -> _Device:
    device = as_mapping(value, where)
    check_keys(device, _DEVICE_CALLS, where)
    return _Device(
        uuid=decode(device, "uuid", as_str, where),
        name=decode(device, "name", as_str, where),
        pci_bus_id=decode(device, "pci_bus_id", as_str, where),
        memory=decode(device, "memory", _parse_memory, where),
        compute_capability=decode(device, "compute_capability", as_int_pair, where),
        mig_mode=decode(device, "mig_mode", as_int_pair, where),
        compute_processes=decode(device, "compute_processes", parse_processes, where),
    )


def _parse_memory(value: object, where: str) -> NvmlMemory:
    fields = as_mapping(value, where)
    check_keys(fields, {"total", "free", "used"}, where)
    return NvmlMemory(
        total=as_int(fields.get("total"), f"{where}.total"),
        free=as_int(fields.get("free"), f"{where}.free"),
        used=as_int(fields.get("used"), f"{where}.used"),
    )


def record_nvml(nvml: NvmlLibrary) -> dict[str, object]:
    """Asks a live NVML everything the NVIDIA detector asks, and keeps the answers."""
    init = capture(nvml.init, lambda _: None)
    section: dict[str, object] = {"init": init}
    if "error" in init:
        return section
    try:
        section["driver_version"] = capture(nvml.driver_version, str)
        section["cuda_driver_version"] = capture(nvml.cuda_driver_version, int)
        count = capture(nvml.device_count, int)
        section["device_count"] = count
        section["devices"] = [_record_device(nvml, i) for i in range(count_of(count))]
    finally:
        with contextlib.suppress(LibraryCallError):
            nvml.shutdown()
    return section


def _record_device(nvml: NvmlLibrary, index: int) -> dict[str, object]:
    return {
        "uuid": capture(lambda: nvml.device_uuid(index), str),
        "name": capture(lambda: nvml.device_name(index), str),
        "pci_bus_id": capture(lambda: nvml.device_pci_bus_id(index), str),
        "memory": capture(lambda: nvml.device_memory(index), dataclasses.asdict),
        "compute_capability": capture(lambda: nvml.device_compute_capability(index), list),
        "mig_mode": capture(lambda: nvml.device_mig_mode(index), list),
        "compute_processes": capture(
            lambda: nvml.device_compute_processes(index), encode_processes
        ),
    }
