"""AMD GPUs as the amdgpu kernel driver shows them in sysfs, for hosts where amdsmi is unusable."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ozwald_agent.hardware.pci import normalize_pci_bus_id

AMD_PCI_VENDOR = "0x1002"
# PCI base classes of GPUs: display controllers (0x03) and processing accelerators (0x12,
# where some Instinct boards sit). AMD's HDMI audio functions share the vendor id.
_GPU_PCI_CLASS_PREFIXES = ("0x03", "0x12")
_CARD_NAME = re.compile(r"card(\d+)")
# Containers are given the host's device paths, so the report names /dev/dri/... even when
# the dev root looked at is elsewhere (a replayed snapshot).
RENDER_NODE_DIR = "/dev/dri"


@dataclass(frozen=True)
class SysfsAmdGpu:
    """One AMD DRM card; empty strings and None mean sysfs did not say."""

    pci_bus_id: str
    pci_device_id: str
    product_name: str
    serial: str
    vram_total_bytes: int | None
    vram_used_bytes: int | None
    render_node: str


class AmdSysfs:
    """Reads AMD GPU facts under `sysfs_root` (normally /sys) and `dev_root` (normally /dev)."""

    def __init__(self, sysfs_root: Path, dev_root: Path) -> None:
        self._sysfs = sysfs_root
        self._dev = dev_root

    def drm_cards(self) -> list[SysfsAmdGpu]:
        """AMD cards under class/drm, in PCI bus order (amd-smi's order)."""
        drm = self._sysfs / "class" / "drm"
        try:
            names = [p.name for p in drm.iterdir() if _CARD_NAME.fullmatch(p.name)]
        except OSError:
            return []
        cards = [
            self._card(drm / name / "device")
            for name in names
            if _read(drm / name / "device" / "vendor") == AMD_PCI_VENDOR
        ]
        return sorted(cards, key=lambda card: card.pci_bus_id)

    def pci_gpu_functions(self) -> list[str] | None:
        """Bus ids of AMD GPUs on the PCI bus, driver bound or not; None when unreadable."""
        devices = self._sysfs / "bus" / "pci" / "devices"
        try:
            entries = sorted(devices.iterdir())
        except OSError:
            return None
        return [
            normalize_pci_bus_id(entry.name)
            for entry in entries
            if _read(entry / "vendor") == AMD_PCI_VENDOR
            and _read(entry / "class").startswith(_GPU_PCI_CLASS_PREFIXES)
        ]

    def driver_version(self) -> str:
        """The amdgpu module's version; only DKMS (ROCm) builds have one, in-tree ones do not."""
        return _read(self._sysfs / "module" / "amdgpu" / "version")

    def kfd_present(self) -> bool:
        """/dev/kfd is the compute interface every ROCm container needs beside its render node."""
        return (self._dev / "kfd").exists()

    def _card(self, device: Path) -> SysfsAmdGpu:
        return SysfsAmdGpu(
            pci_bus_id=normalize_pci_bus_id(_uevent(device).get("PCI_SLOT_NAME", "")),
            pci_device_id=_read(device / "device").lower(),
            product_name=_read(device / "product_name"),
            serial=_read(device / "unique_id"),
            vram_total_bytes=_read_int(device / "mem_info_vram_total"),
            vram_used_bytes=_read_int(device / "mem_info_vram_used"),
            render_node=_render_node(device / "drm"),
        )


def _render_node(drm: Path) -> str:
    try:
        nodes = sorted(p.name for p in drm.iterdir() if p.name.startswith("renderD"))
    except OSError:
        return ""
    return f"{RENDER_NODE_DIR}/{nodes[0]}" if nodes else ""


def _uevent(device: Path) -> dict[str, str]:
    pairs = (line.partition("=") for line in _read(device / "uevent").splitlines())
    return {key: value for key, sep, value in pairs if sep}


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return ""


def _read_int(path: Path) -> int | None:
    text = _read(path)
    return int(text) if text.isdigit() else None
