"""Hardware snapshots: a host's GPU libraries' answers, recorded to JSON and replayed.

A snapshot lets an agent (`--hardware-snapshot FILE`) and the tests simulate a host's GPUs
while CPU, memory, disk and the container engine stay this host's own. It records what the
libraries answered, not the resulting profile, so replaying it runs the detectors' logic.

Top-level JSON shape (format_version 1):

    {
      "format_version": 1,
      "description": "what machine this is and how it was made",
      "recorded_at": "2026-11-27T10:00:00Z",     (optional)
      "nvml":   {...},     NVML's answers, see nvml_replay
      "amdsmi": {...},     amdsmi's answers, see amdsmi_replay
      "sysfs":  {...},     GPU-related sysfs files, see sysfs_snapshot
      "dev":    [...]      /dev entries that existed, see sysfs_snapshot
    }
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from ozwald_agent.hardware.amdsmi_replay import ReplayAmdSmiLibrary, record_amdsmi
from ozwald_agent.hardware.nvml_replay import ReplayNvmlLibrary, record_nvml
from ozwald_agent.hardware.recorded import as_list, as_mapping, as_str, check_keys
from ozwald_agent.hardware.sources import HardwareSources
from ozwald_agent.hardware.sysfs_snapshot import materialize, record_dev, record_sysfs

FORMAT_VERSION = 1
_KEYS = {"format_version", "description", "recorded_at", "nvml", "amdsmi", "sysfs", "dev"}


def record_snapshot(
    sources: HardwareSources | None = None, *, description: str = ""
) -> dict[str, object]:
    """Asks the GPU libraries (this host's unless `sources` says otherwise) and keeps it all."""
    hw = sources or HardwareSources.real()
    now = datetime.datetime.now(datetime.UTC)
    return {
        "format_version": FORMAT_VERSION,
        "description": description
        or f"recorded on {os.uname().nodename} by `ozwald-agent record-hardware`",
        "recorded_at": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "nvml": record_nvml(hw.nvml),
        "amdsmi": record_amdsmi(hw.amdsmi),
        "sysfs": record_sysfs(hw.sysfs_root),
        "dev": record_dev(hw.dev_root),
    }


def load_snapshot(path: Path) -> HardwareSources:
    """Sources that replay the snapshot in `path`.

    Raises OSError when the file cannot be read and ValueError when it is not a valid
    snapshot, naming the offending key.
    """
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not JSON: {e}") from e
    try:
        return sources_from_snapshot(document, origin=str(path))
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from e


def sources_from_snapshot(document: object, *, origin: str) -> HardwareSources:
    """Sources that replay an already parsed snapshot; `origin` names it in GPU reports."""
    snapshot = as_mapping(document, "snapshot")
    check_keys(snapshot, _KEYS, "snapshot")
    if snapshot.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"format_version must be {FORMAT_VERSION}")
    description = as_str(snapshot.get("description", ""), "description")
    nvml = ReplayNvmlLibrary(as_mapping(snapshot.get("nvml"), "nvml"))
    amdsmi = ReplayAmdSmiLibrary(as_mapping(snapshot.get("amdsmi"), "amdsmi"))
    sysfs = _string_map(snapshot.get("sysfs", {}), "sysfs")
    dev = [as_str(e, "dev[]") for e in as_list(snapshot.get("dev", []), "dev")]
    workdir = tempfile.TemporaryDirectory(prefix="ozwald-hardware-")
    sysfs_root, dev_root = materialize(sysfs, dev, Path(workdir.name))
    return HardwareSources(
        nvml=nvml,
        amdsmi=amdsmi,
        sysfs_root=sysfs_root,
        dev_root=dev_root,
        simulated_from=f"{origin} ({description})" if description else origin,
        snapshot_dir=workdir,
    )


def _string_map(value: object, where: str) -> Mapping[str, str]:
    fields = as_mapping(value, where)
    return {key: as_str(content, f"{where}.{key}") for key, content in fields.items()}
