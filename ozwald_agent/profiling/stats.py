"""Reading the engine's container stats: memory, its peak, and CPU use. Pure.

The Docker Engine's `GET /containers/{id}/stats` answers the same shape on both cgroup
versions, with different contents:

- cgroup v1: `memory_stats` has `usage` and `max_usage`, the kernel's own high-water mark
  (memory.max_usage_in_bytes) since the container's cgroup was made. That peak includes
  the page cache the container caused, like the memory limit does.
- cgroup v2: `memory_stats` has `usage` but no `max_usage`; the kernel keeps its peak in
  the cgroup's `memory.peak` file (Linux 5.19 and later), read by `cgroup_peak.py`.
- a container that is not running answers an empty `memory_stats`.

CPU: `cpu_stats.cpu_usage.total_usage` is the container's CPU time in nanoseconds and
`system_cpu_usage` the host's (all cores together). Between two samples the container
used `delta_total / delta_system * online_cpus` cores: Docker's own formula, which keeps
working when the engine's clock and this one disagree. Without the host's figure, the
samples' own timestamps (`read`) give the wall time instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

_NANOS = 1_000_000_000


@dataclass(frozen=True)
class StatsSample:
    """One stats answer, reduced to what a footprint needs."""

    # Seconds since the epoch of the engine's reading; None when it gave no time.
    read_at: float | None
    memory_usage: int | None
    # The kernel's peak, where the answer carries it (cgroup v1); None otherwise.
    memory_max_usage: int | None
    cpu_total_ns: int | None
    system_cpu_ns: int | None
    online_cpus: int | None


def parse_stats(stats: Mapping[str, Any]) -> StatsSample:
    memory = stats.get("memory_stats") or {}
    cpu = stats.get("cpu_stats") or {}
    usage = cpu.get("cpu_usage") or {}
    online = cpu.get("online_cpus") or len(usage.get("percpu_usage") or ()) or None
    return StatsSample(
        read_at=_timestamp(stats.get("read")),
        memory_usage=_count(memory.get("usage")),
        memory_max_usage=_count(memory.get("max_usage")),
        cpu_total_ns=_count(usage.get("total_usage")),
        system_cpu_ns=_count(cpu.get("system_cpu_usage")),
        online_cpus=_count(online),
    )


def cpu_cores(before: StatsSample, after: StatsSample) -> float | None:
    """Cores the container used between two samples; None when they cannot tell."""
    if before.cpu_total_ns is None or after.cpu_total_ns is None:
        return None
    used = after.cpu_total_ns - before.cpu_total_ns
    if used < 0:
        return None  # the counter went back: a restarted container
    if (
        before.system_cpu_ns is not None
        and after.system_cpu_ns is not None
        and after.online_cpus
        and after.system_cpu_ns > before.system_cpu_ns
    ):
        return used / (after.system_cpu_ns - before.system_cpu_ns) * after.online_cpus
    if before.read_at is not None and after.read_at is not None and after.read_at > before.read_at:
        return used / _NANOS / (after.read_at - before.read_at)
    return None


def mean_cpu_cores(first: StatsSample, last: StatsSample) -> float | None:
    """CPU time used between the first and last sample over the wall time between them."""
    if (
        first.cpu_total_ns is None
        or last.cpu_total_ns is None
        or first.read_at is None
        or last.read_at is None
        or last.read_at <= first.read_at
    ):
        return None
    return max(last.cpu_total_ns - first.cpu_total_ns, 0) / _NANOS / (last.read_at - first.read_at)


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _timestamp(value: object) -> float | None:
    """RFC 3339 with nanoseconds, as Go writes it: `2026-11-27T10:00:00.123456789Z`."""
    if not isinstance(value, str) or not value or value.startswith("0001-01-01"):
        return None
    text = value.replace("Z", "+00:00")
    # Python parses at most microseconds: cut the fraction to six digits.
    if "." in text:
        head, rest = text.split(".", 1)
        digits = ""
        for char in rest:
            if not char.isdigit():
                break
            digits += char
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits) :]}"
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None
