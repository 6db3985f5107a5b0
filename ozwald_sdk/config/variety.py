"""Which varieties a host can run, from the agent's HostProfile."""

from __future__ import annotations

from ozwald.common.v1 import gpu_pb2
from ozwald.common.v1.host_profile_pb2 import HostProfile

from ozwald_sdk.config.names import Variety

_VENDOR_VARIETY: dict[int, Variety] = {
    gpu_pb2.GPU_VENDOR_NVIDIA: "nvidia",
    gpu_pb2.GPU_VENDOR_AMD: "amdgpu",
}


def host_varieties(host: HostProfile | None) -> frozenset[Variety]:
    """nvidia when NVIDIA GPUs are present, amdgpu when AMD ones are, cpu always.

    Without a host profile nothing is known about GPUs, so only cpu is assumed.
    """
    found: set[Variety] = {"cpu"}
    if host is not None:
        for report in host.gpu_vendors:
            variety = _VENDOR_VARIETY.get(report.vendor)
            if variety is not None and report.present:
                found.add(variety)
    return frozenset(found)


def choose_variety(
    defined: tuple[Variety, ...] | list[Variety],
    preference: tuple[Variety, ...],
    available: frozenset[Variety],
) -> Variety | None:
    """The first variety in `preference` that the service defines and the host has."""
    for variety in preference:
        if variety in defined and variety in available:
            return variety
    return None
