"""Small hardware snapshots written inline, for detector edge cases no fixture file covers."""

from __future__ import annotations

from ozwald_agent.hardware.snapshot import FORMAT_VERSION, sources_from_snapshot
from ozwald_agent.hardware.sources import HardwareSources

NO_NVML = {"init": {"error": {"code": "NVML_ERROR_LIBRARY_NOT_FOUND", "message": "not found"}}}
NO_AMDSMI = {"init": {"error": {"code": "IMPORT_MODULE_MISSING", "message": "no amdsmi"}}}


def value(answer: object) -> dict[str, object]:
    return {"value": answer}


def error(code: str, message: str = "it failed") -> dict[str, object]:
    return {"error": {"code": code, "message": message}}


def snapshot(
    nvml: dict[str, object] | None = None,
    amdsmi: dict[str, object] | None = None,
    sysfs: dict[str, str] | None = None,
    dev: list[str] | None = None,
) -> dict[str, object]:
    return {
        "format_version": FORMAT_VERSION,
        "description": "inline test snapshot",
        "nvml": NO_NVML if nvml is None else nvml,
        "amdsmi": NO_AMDSMI if amdsmi is None else amdsmi,
        "sysfs": {"bus/pci/devices/": ""} if sysfs is None else sysfs,
        "dev": dev or [],
    }


def sources(**parts: object) -> HardwareSources:
    return sources_from_snapshot(snapshot(**parts), origin="inline")  # type: ignore[arg-type]


def nvml_device(**overrides: object) -> dict[str, object]:
    """One healthy H100's answers, with any call's answer replaced."""
    device: dict[str, object] = {
        "uuid": value("GPU-00000000-1111-2222-3333-444444444444"),
        "name": value("NVIDIA H100 80GB HBM3"),
        "pci_bus_id": value("00000000:18:00.0"),
        "memory": value({"total": 85520809984, "free": 85017493504, "used": 503316480}),
        "compute_capability": value([9, 0]),
        "mig_mode": value([0, 0]),
        "compute_processes": value([]),
    }
    device.update(overrides)
    return device


def nvml(*devices: dict[str, object], count: object = None) -> dict[str, object]:
    return {
        "init": value(None),
        "driver_version": value("550.54.15"),
        "cuda_driver_version": value(12040),
        "device_count": value(len(devices)) if count is None else count,
        "devices": list(devices),
    }


def amd_card(card: int, slot: str, render: int, total: int = 206158430208) -> dict[str, str]:
    """sysfs files of one amdgpu-driven MI300X."""
    base = f"class/drm/card{card}/device/"
    return {
        "class/drm/": "",
        base + "vendor": "0x1002\n",
        base + "device": "0x74a1\n",
        base + "uevent": f"DRIVER=amdgpu\nPCI_SLOT_NAME={slot}\n",
        base + "mem_info_vram_total": f"{total}\n",
        base + "mem_info_vram_used": "1048576\n",
        base + f"drm/renderD{render}/dev": f"226:{render}\n",
    }
