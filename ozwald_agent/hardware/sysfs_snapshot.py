"""The sysfs files and /dev entries a hardware snapshot keeps, and writing them back out.

The snapshot's "sysfs" object maps paths relative to the sysfs root to file contents; a
path ending in "/" records a directory that existed. "dev" lists paths relative to /dev
that existed (their contents do not matter). Only files the AMD detector reads are kept.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath

from ozwald_agent.hardware.amd_sysfs import AMD_PCI_VENDOR

_CARD_FILES = (
    "vendor",
    "device",
    "uevent",
    "product_name",
    "unique_id",
    "mem_info_vram_total",
    "mem_info_vram_used",
)
_PCI_FILES = ("vendor", "class", "device")


def record_sysfs(sysfs_root: Path) -> dict[str, str]:
    """Copies the GPU-related sysfs files under `sysfs_root` into snapshot form."""
    files: dict[str, str] = {}
    drm = sysfs_root / "class" / "drm"
    if drm.is_dir():
        files["class/drm/"] = ""
    for card in _children(drm, "card"):
        if "-" in card.name:  # connectors such as card0-DP-1
            continue
        for name in _CARD_FILES:
            _keep(files, sysfs_root, card / "device" / name)
        for node in _children(card / "device" / "drm", "renderD"):
            _keep(files, sysfs_root, node / "dev")
    _keep(files, sysfs_root, sysfs_root / "module" / "amdgpu" / "version")
    pci = sysfs_root / "bus" / "pci" / "devices"
    if pci.is_dir():
        files["bus/pci/devices/"] = ""
    for function in _children(pci, ""):
        if _text(function / "vendor").strip() == AMD_PCI_VENDOR:
            for name in _PCI_FILES:
                _keep(files, sysfs_root, function / name)
    return files


def record_dev(dev_root: Path) -> list[str]:
    """The /dev entries the AMD detector looks for: /dev/kfd and the DRM render nodes."""
    entries = ["kfd"] if (dev_root / "kfd").exists() else []
    entries += [f"dri/{node.name}" for node in _children(dev_root / "dri", "renderD")]
    return entries


def materialize(sysfs: Mapping[str, str], dev: list[str], root: Path) -> tuple[Path, Path]:
    """Writes a snapshot's files under `root`; returns the (sysfs root, dev root) made there."""
    sysfs_root, dev_root = root / "sys", root / "dev"
    sysfs_root.mkdir()
    dev_root.mkdir()
    for relative, content in sysfs.items():
        target = sysfs_root / _safe(relative)
        if relative.endswith("/"):
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
    for relative in dev:
        target = dev_root / _safe(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()
    return sysfs_root, dev_root


def _safe(relative: str) -> PurePosixPath:
    # A snapshot is input from elsewhere: it must not write outside the directory given.
    path = PurePosixPath(relative)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ValueError(f"snapshot path {relative!r} must be relative and stay inside its root")
    return path


def _children(directory: Path, prefix: str) -> Iterator[Path]:
    try:
        yield from sorted(p for p in directory.iterdir() if p.name.startswith(prefix))
    except OSError:
        return


def _keep(files: dict[str, str], root: Path, path: Path) -> None:
    content = _text(path)
    if content or path.is_file():
        files[path.relative_to(root).as_posix()] = content


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return ""
