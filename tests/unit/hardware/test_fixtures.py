"""Every recorded hardware fixture, replayed through the real detectors.

A new fixture in tests/fixtures/hardware is picked up automatically and fails until its
expected facts are written down in EXPECTED below.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from ozwald.common.v1 import gpu_pb2

from ozwald_agent.hardware.profile import detect_gpus
from ozwald_agent.hardware.snapshot import load_snapshot

FIXTURES = Path(__file__).parents[2] / "fixtures" / "hardware"
FIXTURE_FILES = sorted(FIXTURES.glob("*.json"))

H100 = 85520809984
RTX4090 = 25757220864
MI300X = 192 * 1024**3
MI210 = 68702699520
W7900 = 48 * 1024**3
RX7900XTX = 25753026560
A100 = 85899345920

OFF = (gpu_pb2.MIG_MODE_DISABLED, gpu_pb2.MIG_MODE_DISABLED)
NO_MIG = (gpu_pb2.MIG_MODE_NOT_SUPPORTED, gpu_pb2.MIG_MODE_NOT_SUPPORTED)
UNSET = (gpu_pb2.MIG_MODE_UNSPECIFIED, gpu_pb2.MIG_MODE_UNSPECIFIED)
PRESENT = gpu_pb2.GPU_ABSENCE_REASON_UNSPECIFIED
NO_DEVICES = gpu_pb2.GPU_ABSENCE_REASON_NO_DEVICES
NO_DRIVER = gpu_pb2.GPU_ABSENCE_REASON_NO_DRIVER
NO_PROCESS_LISTS = "process lists are unknown without amdsmi"


@dataclass(frozen=True)
class Vendor:
    """What one vendor's report must say; empty tuples are not checked, except warnings."""

    reason: gpu_pb2.GpuAbsenceReason.ValueType
    method: str
    detail_has: tuple[str, ...]
    vram: tuple[int, ...] = ()
    driver: str = ""
    cuda: str = ""
    bus_ids: tuple[str, ...] = ()
    uuids: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    mig: tuple[tuple[int, int], ...] = ()
    render_nodes: tuple[str, ...] = ()
    processes: tuple[tuple[tuple[int, int], ...], ...] = ()
    warnings: tuple[str, ...] = ()


NVIDIA_NO_DRIVER = Vendor(NO_DRIVER, "nvml", ("NVML_ERROR_LIBRARY_NOT_FOUND",))
AMD_NONE_ON_BUS = Vendor(NO_DEVICES, "sysfs", ("no AMD GPU on this host's PCI bus",))
AMD_NO_ROCM = Vendor(NO_DEVICES, "sysfs", ("no AMD GPU", "libamd_smi.so", "IMPORT_FAILED"))
AMD_NO_BINDING = Vendor(NO_DEVICES, "sysfs", ("no AMD GPU", "IMPORT_MODULE_MISSING"))

EXPECTED: dict[str, tuple[Vendor, Vendor]] = {
    "nvidia_h100_x1.json": (
        Vendor(
            PRESENT,
            "nvml",
            ("NVML sees 1 NVIDIA GPU(s)",),
            vram=(H100,),
            driver="580.159.04",
            cuda="13.0",
            bus_ids=("0000:00:06.0",),
            uuids=("GPU-6f0e1def-89cd-bc06-ea4e-889ba8d57dc3",),
            names=("NVIDIA H100 80GB HBM3",),
            mig=(OFF,),
            processes=((),),
        ),
        AMD_NO_BINDING,
    ),
    "nvidia_h100_x8.json": (
        Vendor(
            PRESENT,
            "nvml",
            ("NVML sees 8 NVIDIA GPU(s)",),
            vram=(H100,) * 8,
            driver="535.129.03",
            cuda="12.2",
            bus_ids=tuple(
                f"0000:{bus}:00.0" for bus in ("18", "2a", "3a", "5d", "9a", "ab", "ba", "db")
            ),
            names=("NVIDIA H100 80GB HBM3",) * 8,
            mig=(
                *(OFF,) * 5,
                (gpu_pb2.MIG_MODE_ENABLED, gpu_pb2.MIG_MODE_ENABLED),
                (gpu_pb2.MIG_MODE_DISABLED, gpu_pb2.MIG_MODE_ENABLED),
                OFF,
            ),
            processes=((), (), (), ((48213, 72944615424),), (), (), (), ()),
            warnings=("GPU 7: processes: Insufficient Permissions (NVML_ERROR_NO_PERMISSION)",),
        ),
        AMD_NO_ROCM,
    ),
    "nvidia_rtx4090_x2.json": (
        Vendor(
            PRESENT,
            "nvml",
            ("NVML sees 2 NVIDIA GPU(s)",),
            vram=(RTX4090, RTX4090),
            driver="550.120",
            cuda="12.4",
            bus_ids=("0000:01:00.0", "0000:4c:00.0"),
            names=("NVIDIA GeForce RTX 4090",) * 2,
            mig=(NO_MIG, NO_MIG),
            # NVML gives no figure for this process: it is reported as 0 bytes.
            processes=((), ((2211, 0),)),
        ),
        AMD_NO_BINDING,
    ),
    "nvidia_a100_x2_gpu_lost.json": (
        Vendor(
            PRESENT,
            "nvml",
            ("NVML sees 2 NVIDIA GPU(s), 1 of them unreadable",),
            vram=(A100,),
            driver="535.183.01",
            cuda="12.2",
            names=("NVIDIA A100 80GB PCIe",),
            mig=(OFF,),
            warnings=("GPU 1 left out: its UUID cannot be read: GPU is lost",),
        ),
        AMD_NONE_ON_BUS,
    ),
    "nvidia_nvml_failing.json": (
        Vendor(
            gpu_pb2.GPU_ABSENCE_REASON_LIBRARY_ERROR,
            "nvml",
            ("NVML cannot start", "version mismatch", "NVML_ERROR_LIB_RM_VERSION_MISMATCH"),
        ),
        AMD_NO_ROCM,
    ),
    "nvidia_permission_denied.json": (
        Vendor(
            gpu_pb2.GPU_ABSENCE_REASON_PERMISSION_DENIED,
            "nvml",
            ("Insufficient Permissions", "/dev/nvidia*"),
        ),
        AMD_NO_BINDING,
    ),
    "amd_mi300x_x1.json": (
        NVIDIA_NO_DRIVER,
        Vendor(
            PRESENT,
            "amdsmi",
            ("amdsmi sees 1 AMD GPU(s)",),
            vram=(MI300X,),
            driver="6.8.5",
            bus_ids=("0000:0c:00.0",),
            uuids=("0x5E8B3C2A1F4D6E70",),
            names=("AMD Instinct MI300X",),
            mig=(UNSET,),
            render_nodes=("/dev/dri/renderD128",),
            processes=(((7781, 1073741824),),),
        ),
    ),
    "amd_mi210_x2_sysfs.json": (
        NVIDIA_NO_DRIVER,
        Vendor(
            PRESENT,
            "sysfs",
            ("found 2 AMD GPU(s) in sysfs", "amdsmi is unusable", "libamd_smi.so"),
            vram=(MI210, MI210),
            driver="6.7.0",
            # PCI order, not card order: card2 sits on the lower bus.
            bus_ids=("0000:83:00.0", "0000:c3:00.0"),
            uuids=("0x1B3D5F7092A4C6E8", "0x9A1F3C5E7B2D4F60"),
            names=("Instinct MI210",) * 2,
            render_nodes=("/dev/dri/renderD129", "/dev/dri/renderD128"),
            warnings=(NO_PROCESS_LISTS,),
        ),
    ),
    "amd_mi300x_no_driver.json": (
        NVIDIA_NO_DRIVER,
        Vendor(
            NO_DRIVER,
            "sysfs",
            ("AMD GPU(s) at 0000:0c:00.0 on the PCI bus", "AMDSMI_STATUS_DRIVER_NOT_LOADED"),
        ),
    ),
    "amd_rx7900xtx_no_kfd.json": (
        NVIDIA_NO_DRIVER,
        Vendor(
            NO_DRIVER,
            "sysfs",
            ("found 1 AMD GPU(s) in sysfs", "/dev/kfd is missing"),
            vram=(RX7900XTX,),
            bus_ids=("0000:2d:00.0",),
            uuids=("pci-0000:2d:00.0",),
            names=("AMD GPU 0x744c",),
            render_nodes=("/dev/dri/renderD128",),
            warnings=(NO_PROCESS_LISTS,),
        ),
    ),
    "mixed_nvidia_amd.json": (
        Vendor(
            PRESENT,
            "nvml",
            ("NVML sees 1 NVIDIA GPU(s)",),
            vram=(RTX4090,),
            driver="550.120",
            cuda="12.4",
            names=("NVIDIA GeForce RTX 4090",),
            mig=(NO_MIG,),
        ),
        Vendor(
            PRESENT,
            "amdsmi",
            ("amdsmi sees 1 AMD GPU(s)",),
            vram=(W7900,),
            driver="6.3.6",
            bus_ids=("0000:83:00.0",),
            uuids=("pci-0000:83:00.0",),
            names=("AMD Radeon PRO W7900",),
            # amdsmi lacks the enumeration call here; the node comes from sysfs.
            render_nodes=("/dev/dri/renderD129",),
            warnings=("GPU 0: processes: AMDSMI_STATUS_NOT_SUPPORTED",),
        ),
    ),
    "cpu_only.json": (NVIDIA_NO_DRIVER, AMD_NO_ROCM),
}


@pytest.fixture(params=FIXTURE_FILES, ids=[path.name for path in FIXTURE_FILES])
def fixture_path(request: pytest.FixtureRequest) -> Path:
    path: Path = request.param
    return path


def test_the_fixtures_directory_is_not_empty() -> None:
    assert len(FIXTURE_FILES) >= 7


def test_every_fixture_has_its_expected_facts(fixture_path: Path) -> None:
    assert fixture_path.name in EXPECTED, f"write down what {fixture_path.name} must report"


def test_fixture_reports_its_expected_facts(fixture_path: Path) -> None:
    nvidia, amd = detect_gpus(load_snapshot(fixture_path))
    expected_nvidia, expected_amd = EXPECTED[fixture_path.name]

    assert nvidia.vendor == gpu_pb2.GPU_VENDOR_NVIDIA
    assert amd.vendor == gpu_pb2.GPU_VENDOR_AMD
    _assert_matches(nvidia, expected_nvidia)
    _assert_matches(amd, expected_amd)


def test_fixture_reports_are_consistent(fixture_path: Path) -> None:
    for report in detect_gpus(load_snapshot(fixture_path)):
        assert report.present == (report.absence_reason == PRESENT)
        assert not report.present or report.devices
        assert f"[simulated from hardware snapshot {fixture_path}" in report.detail
        for position, device in enumerate(report.devices):
            assert device.vendor == report.vendor
            assert device.index == position
            assert device.memory_used_bytes + device.memory_free_bytes == device.memory_total_bytes
            if report.vendor == gpu_pb2.GPU_VENDOR_NVIDIA:
                assert device.uuid.startswith("GPU-")
                assert not device.render_node
            else:
                assert device.render_node.startswith("/dev/dri/renderD")
                assert device.pci_device_id.startswith("0x")


def _assert_matches(report: gpu_pb2.GpuVendorReport, expected: Vendor) -> None:
    devices = report.devices
    assert report.absence_reason == expected.reason, report.detail
    assert report.present == (expected.reason == PRESENT)
    assert report.detection_method == expected.method
    for text in expected.detail_has:
        assert text in report.detail
    assert tuple(d.memory_total_bytes for d in devices) == expected.vram
    assert report.driver_version == expected.driver
    assert report.cuda_version == expected.cuda
    assert len(report.warnings) == len(expected.warnings), list(report.warnings)
    for warning, text in zip(report.warnings, expected.warnings, strict=True):
        assert text in warning
    checks: list[tuple[tuple[object, ...], tuple[object, ...]]] = [
        (expected.bus_ids, tuple(d.pci_bus_id for d in devices)),
        (expected.uuids, tuple(d.uuid for d in devices)),
        (expected.names, tuple(d.name for d in devices)),
        (expected.mig, tuple((d.mig_mode, d.mig_mode_pending) for d in devices)),
        (expected.render_nodes, tuple(d.render_node for d in devices)),
        (
            expected.processes,
            tuple(tuple((p.pid, p.used_memory_bytes) for p in d.processes) for d in devices),
        ),
    ]
    for wanted, actual in checks:
        if wanted:
            assert actual == wanted
