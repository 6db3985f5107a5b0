"""The GPUs admission assigned to one service, and the host devices they mean.

NVIDIA GPUs reach a container through a Docker device request by UUID (the NVIDIA
Container Toolkit does the rest). AMD GPUs are device nodes: `/dev/kfd` (the compute
interface, shared by all AMD GPUs) plus the GPU's own `/dev/dri/renderD*`; the device
cgroup then only lets the container open that render node, which is what pins it.

Group ids for AMD: the container's user must be allowed to open the nodes, which are
usually mode 0660 owned by the host groups `render` (and sometimes `video`). Docker's
`group_add` resolves a group *name* inside the image's /etc/group, whose numbers rarely
match the host's (`render` is 109 on one distribution, 992 on another). So the agent adds
the numeric owner group of each node as it is on the host, read with stat(2): the numbers
that the kernel actually checks.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ozwald.common.v1 import gpu_pb2

from ozwald_agent.runtime.errors import GpuUnavailableError, InvalidSpecError

KFD = "/dev/kfd"
_RENDER_NODE = re.compile(r"^/dev/dri/renderD[0-9]+$")


@dataclass(frozen=True)
class GpuAssignment:
    """Concrete GPUs for one service: all of one vendor, in the order admission chose.

    `render_nodes` is AMD only: each GPU's render node, in the order of `uuids` (the
    agent's hardware detection reports it as `GpuDevice.render_node`).
    """

    vendor: gpu_pb2.GpuVendor.ValueType
    uuids: tuple[str, ...]
    render_nodes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.uuids:
            raise InvalidSpecError("a GPU assignment names no GPU")
        if len(set(self.uuids)) != len(self.uuids):
            raise InvalidSpecError(f"a GPU assignment repeats a GPU: {', '.join(self.uuids)}")
        if self.vendor == gpu_pb2.GPU_VENDOR_NVIDIA:
            if self.render_nodes:
                raise InvalidSpecError("NVIDIA GPUs are pinned by UUID, not by render node")
        elif self.vendor == gpu_pb2.GPU_VENDOR_AMD:
            if len(self.render_nodes) != len(self.uuids):
                raise InvalidSpecError(
                    f"AMD GPUs {', '.join(self.uuids)} need one render node each, "
                    f"got {len(self.render_nodes)}",
                    remedy="pass each device's GpuDevice.render_node from hardware detection",
                )
            bad = [node for node in self.render_nodes if not _RENDER_NODE.match(node)]
            if bad:
                raise InvalidSpecError(
                    f"not a DRM render node: {', '.join(bad)}",
                    remedy="render nodes look like /dev/dri/renderD128",
                )
        else:
            raise InvalidSpecError("a GPU assignment must name its vendor (NVIDIA or AMD)")

    @property
    def amd_device_paths(self) -> tuple[str, ...]:
        """Host device nodes an AMD container gets: /dev/kfd, then its render nodes."""
        if self.vendor != gpu_pb2.GPU_VENDOR_AMD:
            return ()
        return (KFD, *self.render_nodes)


def device_group_ids(
    paths: Iterable[str], stat: Callable[[str], os.stat_result] = os.stat
) -> tuple[int, ...]:
    """The host groups owning the device nodes, sorted, without duplicates."""
    gids: set[int] = set()
    for path in paths:
        try:
            gids.add(stat(path).st_gid)
        except FileNotFoundError as e:
            raise GpuUnavailableError(
                f"device {path} does not exist on this host",
                remedy="check that the amdgpu kernel driver is loaded (ls -l /dev/kfd "
                "/dev/dri) and that hardware detection is current",
            ) from e
        except OSError as e:
            raise GpuUnavailableError(f"cannot stat device {path}: {e.strerror or e}") from e
    return tuple(sorted(gids))
