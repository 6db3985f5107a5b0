"""The kernel's peak memory of a container's cgroup v2 (`memory.peak`), read from the host.

On cgroup v2 the engine's stats carry no peak. The kernel keeps one (Linux 5.19 and
later) in the cgroup's `memory.peak`. The cgroup is found from the container's main
process: `/proc/<pid>/cgroup` holds one line `0::/PATH` on a v2 host, and the file is
`/sys/fs/cgroup/PATH/memory.peak`. Where any of that is missing (an older kernel, an
agent that does not see the host's /proc, a remote engine), the answer is None and the
footprint falls back to sampled usage.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC = Path("/proc")


def cgroup_v2_path(proc_cgroup: str) -> str | None:
    """The unified hierarchy's path from the text of /proc/<pid>/cgroup, or None (v1)."""
    for line in proc_cgroup.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "" and path.startswith("/"):
            return path
    return None


def memory_peak(
    pid: int,
    *,
    read_text: Callable[[Path], str] = lambda path: path.read_text(),
    proc: Path = PROC,
    cgroup_root: Path = CGROUP_ROOT,
) -> int | None:
    """memory.peak of the cgroup `pid` belongs to, in bytes; None when it cannot be read."""
    if pid <= 0:
        return None
    try:
        path = cgroup_v2_path(read_text(proc / str(pid) / "cgroup"))
        if path is None:
            return None
        value = read_text(cgroup_root / path.lstrip("/") / "memory.peak").strip()
        return int(value)
    except (OSError, ValueError):
        return None
