"""Reading /proc/self/mountinfo: which encrypted volumes are mounted where.

Format (proc(5)): `ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE
SUPER_OPTIONS`; spaces, tabs, newlines and backslashes in paths are written as octal
escapes (`\\040`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")
GOCRYPTFS_FSTYPE = "fuse.gocryptfs"
_OCTAL = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class MountEntry:
    mount_id: int
    mount_point: str
    fstype: str
    source: str


def unescape(field: str) -> str:
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse(lines: Iterable[str]) -> list[MountEntry]:
    entries = []
    for line in lines:
        fields = line.split()
        if "-" not in fields:
            continue
        separator = fields.index("-")
        if separator < 5 or len(fields) < separator + 3:
            continue
        entries.append(
            MountEntry(
                mount_id=int(fields[0]),
                mount_point=unescape(fields[4]),
                fstype=fields[separator + 1],
                source=unescape(fields[separator + 2]),
            )
        )
    return entries


def read(path: Path = MOUNTINFO) -> list[MountEntry]:
    with open(path, encoding="utf-8") as lines:
        return parse(lines)


def gocryptfs_mounts_under(root: Path, entries: Iterable[MountEntry]) -> list[MountEntry]:
    """The gocryptfs mounts at or below `root`, deepest first (the order to unmount in)."""
    prefix = str(root).rstrip("/") + "/"
    found = [
        e
        for e in entries
        if e.fstype == GOCRYPTFS_FSTYPE
        and (e.mount_point == str(root) or e.mount_point.startswith(prefix))
    ]
    return sorted(found, key=lambda e: (-e.mount_point.count("/"), e.mount_point))
