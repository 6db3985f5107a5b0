"""Main memory facts from the kernel."""

from __future__ import annotations

import psutil
from ozwald.common.v1 import host_profile_pb2


def collect_memory() -> host_profile_pb2.MemoryInfo:
    # On Linux psutil reports MemTotal and MemAvailable from /proc/meminfo, in bytes.
    virtual = psutil.virtual_memory()
    return host_profile_pb2.MemoryInfo(
        total_bytes=virtual.total,
        available_bytes=virtual.available,
        swap_total_bytes=psutil.swap_memory().total,
    )
