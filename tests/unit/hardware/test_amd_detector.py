"""The AMD detector's own logic: amdsmi first, sysfs second, and the most truthful reason."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
from ozwald.common.v1 import gpu_pb2

from ozwald_agent.hardware.amd_detector import AmdDetector, amdsmi_absence_reason, serial_uuid
from ozwald_agent.hardware.amd_sysfs import AmdSysfs
from ozwald_agent.hardware.amdsmi_replay import ReplayAmdSmiLibrary
from ozwald_agent.hardware.sysfs_snapshot import materialize
from tests.unit.hardware.snapshots import amd_card, error, value


class CountingAmdSmi(ReplayAmdSmiLibrary):
    """A replayed amdsmi that counts how often it was started and shut down."""

    def __init__(self, section: Mapping[str, object]) -> None:
        super().__init__(section)
        self.inits = 0
        self.shutdowns = 0

    def init(self) -> None:
        super().init()
        self.inits += 1

    def shutdown(self) -> None:
        self.shutdowns += 1


def detector(
    tmp_path: Path, amdsmi: CountingAmdSmi, sysfs: dict[str, str], dev: list[str]
) -> AmdDetector:
    tmp_path.mkdir(parents=True, exist_ok=True)
    sysfs_root, dev_root = materialize(sysfs, dev, tmp_path)
    return AmdDetector(amdsmi, AmdSysfs(sysfs_root, dev_root))


def mi300x(**overrides: object) -> dict[str, object]:
    device: dict[str, object] = {
        "asic_info": value(
            {
                "market_name": "AMD Instinct MI300X",
                "device_id": "0x74a1",
                "asic_serial": "0x5E8B3C2A1F4D6E70",
            }
        ),
        "pci_bus_id": value("0000:0c:00.0"),
        "vram_total_bytes": value(206158430208),
        "vram_used_bytes": value(299016192),
        "drm_render_minor": value(128),
        "driver_version": value("6.8.5"),
        "processes": value([]),
    }
    device.update(overrides)
    return device


def amdsmi(*devices: dict[str, object]) -> CountingAmdSmi:
    return CountingAmdSmi(
        {"init": value(None), "device_count": value(len(devices)), "devices": list(devices)}
    )


NOT_IMPORTABLE = {"init": error("IMPORT_FAILED", "cannot import amdsmi: KeyError")}
PCI_BUS = {"bus/pci/devices/": ""}


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("IMPORT_MODULE_MISSING", gpu_pb2.GPU_ABSENCE_REASON_LIBRARY_MISSING),
        ("IMPORT_FAILED", gpu_pb2.GPU_ABSENCE_REASON_NO_DRIVER),
        ("AMDSMI_STATUS_DRIVER_NOT_LOADED", gpu_pb2.GPU_ABSENCE_REASON_NO_DRIVER),
        ("AMDSMI_STATUS_NO_PERM", gpu_pb2.GPU_ABSENCE_REASON_PERMISSION_DENIED),
        ("AMDSMI_STATUS_INIT_ERROR", gpu_pb2.GPU_ABSENCE_REASON_LIBRARY_ERROR),
    ],
)
def test_without_sysfs_evidence_the_amdsmi_failure_decides_the_reason(
    tmp_path: Path, code: str, reason: gpu_pb2.GpuAbsenceReason.ValueType
) -> None:
    library = CountingAmdSmi({"init": error(code)})

    report = detector(tmp_path, library, {}, []).detect()

    assert amdsmi_absence_reason(code) == reason
    assert report.absence_reason == reason
    assert "/sys/bus/pci is unreadable" in report.detail
    assert code in report.detail
    assert library.shutdowns == 0


def test_amdsmi_seeing_no_gpu_lets_sysfs_find_them(tmp_path: Path) -> None:
    library = amdsmi()

    report = detector(tmp_path, library, amd_card(1, "0000:0c:00.0", 128), ["kfd"]).detect()

    assert report.present
    assert report.detection_method == "sysfs"
    assert "amdsmi answers but sees no GPU" in report.detail
    assert [d.render_node for d in report.devices] == ["/dev/dri/renderD128"]
    assert (library.inits, library.shutdowns) == (1, 1)


def test_amdsmi_failing_to_list_gpus_falls_back_and_still_shuts_down(tmp_path: Path) -> None:
    library = CountingAmdSmi(
        {"init": value(None), "device_count": error("AMDSMI_STATUS_DRM_ERROR")}
    )

    report = detector(tmp_path, library, amd_card(0, "0000:0c:00.0", 128), ["kfd"]).detect()

    assert report.present
    assert report.detection_method == "sysfs"
    assert "AMDSMI_STATUS_DRM_ERROR" in report.detail
    assert library.shutdowns == 1


def test_no_amd_gpu_and_no_amdsmi_at_all_is_no_devices(tmp_path: Path) -> None:
    not_installed = CountingAmdSmi({"init": error("IMPORT_MODULE_MISSING")})

    report = detector(tmp_path, not_installed, PCI_BUS, []).detect()

    assert report.absence_reason == gpu_pb2.GPU_ABSENCE_REASON_NO_DEVICES
    assert report.detection_method == "sysfs"


def test_an_amdsmi_device_whose_calls_fail_is_kept_with_warnings(tmp_path: Path) -> None:
    device = mi300x(
        vram_used_bytes=error("AMDSMI_STATUS_NOT_SUPPORTED", "not supported"),
        asic_info=error("AMDSMI_STATUS_IO", "I/O Error"),
        drm_render_minor=error("AMDSMI_STATUS_NO_DATA", "no render node"),
    )

    report = detector(tmp_path, amdsmi(device), PCI_BUS, ["kfd"]).detect()

    assert report.present
    (gpu,) = report.devices
    assert gpu.memory_total_bytes == 206158430208
    assert (gpu.memory_used_bytes, gpu.memory_free_bytes) == (0, 0)
    assert gpu.name == "AMD GPU"
    assert gpu.uuid == "pci-0000:0c:00.0"
    assert gpu.render_node == ""
    assert list(report.warnings) == [
        "GPU 0: ASIC info: I/O Error (AMDSMI_STATUS_IO)",
        "GPU 0: render node unknown: no render node (AMDSMI_STATUS_NO_DATA)",
        "GPU 0: VRAM used: not supported (AMDSMI_STATUS_NOT_SUPPORTED)",
    ]


def test_gpus_without_dev_kfd_are_listed_but_not_usable(tmp_path: Path) -> None:
    report = detector(tmp_path, amdsmi(mi300x()), PCI_BUS, ["dri/renderD128"]).detect()

    assert not report.present
    assert report.absence_reason == gpu_pb2.GPU_ABSENCE_REASON_NO_DRIVER
    assert len(report.devices) == 1
    assert "/dev/kfd is missing" in report.detail


def test_sysfs_cards_of_other_vendors_and_connectors_are_ignored(tmp_path: Path) -> None:
    sysfs = amd_card(1, "0000:0c:00.0", 128) | {
        "class/drm/card0/device/vendor": "0x10de\n",
        "class/drm/card1-DP-1/device/vendor": "0x1002\n",
    }

    report = detector(tmp_path, CountingAmdSmi(NOT_IMPORTABLE), sysfs, ["kfd"]).detect()

    assert [d.pci_bus_id for d in report.devices] == ["0000:0c:00.0"]
    assert report.devices[0].name == "AMD GPU 0x74a1"


@pytest.mark.parametrize(
    ("serial", "uuid"),
    [
        ("0x5E8B3C2A1F4D6E70", "0x5E8B3C2A1F4D6E70"),
        ("5e8b3c2a1f4d6e70", "0x5E8B3C2A1F4D6E70"),
        ("1234", "0x0000000000001234"),
        ("N/A", ""),
        ("", ""),
        ("serial-x", "serial-x"),
    ],
)
def test_asic_serials_are_spelt_one_way(serial: str, uuid: str) -> None:
    assert serial_uuid(serial) == uuid


def test_available_when_amdsmi_starts_or_sysfs_has_a_card(tmp_path: Path) -> None:
    working = amdsmi()
    sysfs_only = detector(
        tmp_path / "a", CountingAmdSmi(NOT_IMPORTABLE), amd_card(0, "0000:0c:00.0", 128), []
    )

    assert detector(tmp_path / "b", working, {}, []).available()
    assert sysfs_only.available()
    assert not detector(tmp_path / "c", CountingAmdSmi(NOT_IMPORTABLE), PCI_BUS, []).available()
    assert (working.inits, working.shutdowns) == (1, 1)
