from __future__ import annotations

from pathlib import Path

import pytest
from ozwald.common.v1 import gpu_pb2, host_profile_pb2

from ozwald_testbed.simulated_hardware import (
    GIB,
    MIB,
    OPENB_GPU_MODELS,
    from_fixture,
    from_openb_row,
    load_fixtures,
    openb_rows,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hardware"
# An excerpt of the trace (tests/fixtures/openb/SOURCE.md): three nodes of each GPU model.
OPENB = Path(__file__).resolve().parents[2] / "fixtures" / "openb"


def _vendor(profile: host_profile_pb2.HostProfile, vendor: int) -> gpu_pb2.GpuVendorReport:
    reports = [r for r in profile.gpu_vendors if r.vendor == vendor]
    assert len(reports) == 1
    return reports[0]


def test_h100_x8_has_eight_gpus_and_keeps_mig_and_recorded_usage() -> None:
    hardware = from_fixture(FIXTURES / "nvidia_h100_x8.json", logical_cores=96)
    assert len(hardware.gpus) == 8
    assert {g.name for g in hardware.gpus} == {"NVIDIA H100 80GB HBM3"}
    assert [g.index for g in hardware.gpus if g.mig_enabled] == [5]
    busy = hardware.gpus[3]
    assert busy.memory_used_bytes == 73501409280

    profile = hardware.profile("gpu-01", gpu_used_bytes={hardware.gpus[0].uuid: 10 * GIB})
    nvidia = _vendor(profile, gpu_pb2.GPU_VENDOR_NVIDIA)
    assert nvidia.present
    assert nvidia.devices[0].memory_used_bytes == hardware.gpus[0].memory_used_bytes + 10 * GIB
    assert nvidia.devices[5].mig_mode == gpu_pb2.MIG_MODE_ENABLED
    assert profile.cpu.usable_cores == 96
    assert not _vendor(profile, gpu_pb2.GPU_VENDOR_AMD).present


def test_a_gpu_that_fell_off_the_bus_is_left_out_with_a_warning() -> None:
    hardware = from_fixture(FIXTURES / "nvidia_a100_x2_gpu_lost.json")
    assert len(hardware.gpus) == 1
    assert any("GPU_IS_LOST" in w for w in hardware.warnings)


def test_amd_from_amdsmi_and_from_sysfs() -> None:
    mi300x = from_fixture(FIXTURES / "amd_mi300x_x1.json")
    assert [(g.vendor, g.name) for g in mi300x.gpus] == [
        (gpu_pb2.GPU_VENDOR_AMD, "AMD Instinct MI300X")
    ]
    assert mi300x.gpus[0].memory_total_bytes == 192 * GIB
    assert mi300x.gpus[0].render_node == "/dev/dri/renderD128"

    mi210 = from_fixture(FIXTURES / "amd_mi210_x2_sysfs.json")
    assert [g.name for g in mi210.gpus] == ["Instinct MI210", "Instinct MI210"]
    assert _vendor(mi210.profile("h"), gpu_pb2.GPU_VENDOR_AMD).present


def test_absent_vendors_carry_the_reason_a_real_agent_gives() -> None:
    no_kfd = from_fixture(FIXTURES / "amd_rx7900xtx_no_kfd.json")
    assert not no_kfd.gpus
    amd = _vendor(no_kfd.profile("h"), gpu_pb2.GPU_VENDOR_AMD)
    assert amd.absence_reason == gpu_pb2.GPU_ABSENCE_REASON_NO_DRIVER
    assert "/dev/kfd" in amd.detail

    denied = from_fixture(FIXTURES / "nvidia_permission_denied.json")
    nvidia = _vendor(denied.profile("h"), gpu_pb2.GPU_VENDOR_NVIDIA)
    assert nvidia.absence_reason == gpu_pb2.GPU_ABSENCE_REASON_PERMISSION_DENIED

    cpu = from_fixture(FIXTURES / "cpu_only.json", logical_cores=2, memory_total_bytes=24 * GIB)
    profile = cpu.profile("h", memory_available_bytes=20 * GIB)
    assert profile.memory.total_bytes == 24 * GIB
    assert profile.memory.available_bytes == 20 * GIB
    assert not any(r.present for r in profile.gpu_vendors)


def test_every_recorded_fixture_loads() -> None:
    loaded = load_fixtures(FIXTURES)
    assert len(loaded) == len(list(FIXTURES.glob("*.json")))
    mixed = from_fixture(FIXTURES / "mixed_nvidia_amd.json")
    assert {g.vendor for g in mixed.gpus} == {gpu_pb2.GPU_VENDOR_NVIDIA, gpu_pb2.GPU_VENDOR_AMD}


def test_a_file_that_is_no_snapshot_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"format_version": 2}')
    with pytest.raises(ValueError, match="format_version 1"):
        from_fixture(path)


def test_openb_row_becomes_cores_memory_and_named_gpus() -> None:
    row = {
        "sn": "openb-node-0001",
        "cpu_milli": "96000",
        "memory_mib": "786432",
        "gpu": "8",
        "model": "V100M32",
    }
    hardware = from_openb_row(row)
    assert hardware.logical_cores == 96
    assert hardware.memory_total_bytes == 786432 * MIB
    assert len(hardware.gpus) == 8
    assert {g.memory_total_bytes for g in hardware.gpus} == {32 * GIB}
    assert len({g.uuid for g in hardware.gpus}) == 8
    # Same node, same UUIDs: a re-registering host keeps its GPUs' identities.
    assert [g.uuid for g in from_openb_row(row).gpus] == [g.uuid for g in hardware.gpus]


def test_openb_unknown_model_is_an_error_that_lists_the_known_ones() -> None:
    row = {"sn": "n", "cpu_milli": "1000", "memory_mib": "1024", "gpu": "1", "model": "Z9"}
    with pytest.raises(ValueError, match=r"unknown GPU model 'Z9'.*V100M32"):
        from_openb_row(row)


def test_every_openb_gpu_model_loads() -> None:
    rows = list(openb_rows(OPENB / "openb_node_list_gpu_node.csv"))
    hosts = [from_openb_row(r) for r in rows]
    assert len(hosts) == 20
    assert {r["model"] for r in rows} == set(OPENB_GPU_MODELS) - {"G1"}
    assert sum(len(h.gpus) for h in hosts) == sum(int(r["gpu"]) for r in rows)
