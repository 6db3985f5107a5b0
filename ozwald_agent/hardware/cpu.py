"""Processor facts from the kernel."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import psutil
from ozwald.common.v1 import host_profile_pb2

logger = logging.getLogger(__name__)

CPUINFO = Path("/proc/cpuinfo")


def collect_cpu() -> host_profile_pb2.CpuInfo:
    load_1m, load_5m, load_15m = os.getloadavg()
    return host_profile_pb2.CpuInfo(
        model=cpu_model(_read(CPUINFO)),
        logical_cores=os.cpu_count() or 0,
        # psutil answers None where the kernel hides the topology (some VMs, containers).
        physical_cores=psutil.cpu_count(logical=False) or 0,
        usable_cores=len(os.sched_getaffinity(0)),
        load_average_1m=load_1m,
        load_average_5m=load_5m,
        load_average_15m=load_15m,
        architecture=os.uname().machine,
    )


def cpu_model(cpuinfo: str) -> str:
    """The first "model name" in /proc/cpuinfo text; "" where the kernel has none (most Arm)."""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "model name":
            return value.strip()
    return ""


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as e:
        logger.warning("cannot read %s: %s", path, e)
        return ""
