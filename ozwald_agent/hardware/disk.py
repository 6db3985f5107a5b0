"""The file system that holds (or will hold) the agent's state directory."""

from __future__ import annotations

import shutil
from pathlib import Path

from ozwald.common.v1 import host_profile_pb2


def collect_state_disk(state_dir: Path) -> host_profile_pb2.DiskInfo:
    """Measures `state_dir`, or its nearest existing parent before the agent has created it."""
    usage = shutil.disk_usage(nearest_existing(state_dir.absolute()))
    return host_profile_pb2.DiskInfo(
        path=str(state_dir),
        total_bytes=usage.total,
        used_bytes=usage.used,
        free_bytes=usage.free,
    )


def nearest_existing(path: Path) -> Path:
    """`path` itself if it exists, else its closest ancestor that does ("/" at worst)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor or "/")
