"""GPU assignments and the host groups that may open AMD device nodes."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from ozwald.common.v1 import gpu_pb2

from ozwald_agent.runtime.errors import GpuUnavailableError, InvalidSpecError
from ozwald_agent.runtime.gpus import GpuAssignment, device_group_ids


def _stat_with_gids(gids: dict[str, int]) -> Callable[[str], os.stat_result]:
    def stat(path: str) -> os.stat_result:
        if path not in gids:
            raise FileNotFoundError(2, "No such file or directory", path)
        return os.stat_result((0o20660, 0, 0, 1, 0, gids[path], 0, 0, 0, 0))

    return stat


def test_amd_device_paths_are_kfd_then_the_render_nodes() -> None:
    gpus = GpuAssignment(
        gpu_pb2.GPU_VENDOR_AMD, ("a", "b"), ("/dev/dri/renderD128", "/dev/dri/renderD130")
    )

    assert gpus.amd_device_paths == ("/dev/kfd", "/dev/dri/renderD128", "/dev/dri/renderD130")
    assert GpuAssignment(gpu_pb2.GPU_VENDOR_NVIDIA, ("GPU-1",)).amd_device_paths == ()


def test_group_ids_are_the_device_nodes_owners_on_the_host() -> None:
    stat = _stat_with_gids({"/dev/kfd": 992, "/dev/dri/renderD128": 992, "/dev/dri/renderD130": 44})

    gids = device_group_ids(["/dev/kfd", "/dev/dri/renderD128", "/dev/dri/renderD130"], stat)

    assert gids == (44, 992)


def test_a_missing_device_node_is_a_gpu_problem() -> None:
    stat = _stat_with_gids({"/dev/dri/renderD128": 992})

    with pytest.raises(GpuUnavailableError, match="/dev/kfd does not exist"):
        device_group_ids(["/dev/kfd", "/dev/dri/renderD128"], stat)


@pytest.mark.parametrize(
    ("vendor", "uuids", "nodes", "message"),
    [
        (gpu_pb2.GPU_VENDOR_NVIDIA, (), (), "names no GPU"),
        (gpu_pb2.GPU_VENDOR_NVIDIA, ("GPU-1", "GPU-1"), (), "repeats a GPU"),
        (gpu_pb2.GPU_VENDOR_NVIDIA, ("GPU-1",), ("/dev/dri/renderD128",), "by UUID"),
        (gpu_pb2.GPU_VENDOR_UNSPECIFIED, ("GPU-1",), (), "must name its vendor"),
    ],
)
def test_malformed_assignments_are_refused(
    vendor: gpu_pb2.GpuVendor.ValueType,
    uuids: tuple[str, ...],
    nodes: tuple[str, ...],
    message: str,
) -> None:
    with pytest.raises(InvalidSpecError, match=message):
        GpuAssignment(vendor, uuids, nodes)
