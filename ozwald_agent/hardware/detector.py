"""What every GPU vendor detector offers the host profile."""

from __future__ import annotations

from typing import Protocol

from ozwald.common.v1 import gpu_pb2


class GpuDetector(Protocol):
    """Finds one vendor's GPUs; neither method raises because of a library or driver."""

    def available(self) -> bool:
        """True when this host offers a way to look for the vendor's GPUs.

        That is: the vendor's library starts (devices or not), or a fallback source (AMD's
        sysfs) has a device to read.
        """
        ...

    def detect(self) -> gpu_pb2.GpuVendorReport:
        """The vendor's devices, or why there are none."""
        ...
