"""What every GPU vendor detector offers the host profile."""

from __future__ import annotations

from typing import Protocol

from ozwald.common.v1 import gpu_pb2


class GpuDetector(Protocol):
    """Finds one vendor's GPUs; neither method raises because of a library or driver."""

    def available(self) -> bool:
        """True when the vendor's library answers on this host (devices or not)."""
        ...

    def detect(self) -> gpu_pb2.GpuVendorReport:
        """The vendor's devices, or why there are none."""
        ...
