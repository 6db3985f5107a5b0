"""Operating system facts: the kernel from uname, the distribution from os-release."""

from __future__ import annotations

import os
import platform

from ozwald.common.v1 import host_profile_pb2


def collect_operating_system() -> host_profile_pb2.OperatingSystemInfo:
    uname = os.uname()
    return host_profile_pb2.OperatingSystemInfo(
        kernel_name=uname.sysname,
        kernel_release=uname.release,
        distribution=_pretty_name(),
    )


def _pretty_name() -> str:
    try:
        # Reads /etc/os-release, then /usr/lib/os-release, as os-release(5) prescribes.
        return platform.freedesktop_os_release().get("PRETTY_NAME", "")
    except OSError:
        return ""
