"""Hardware snapshots: loading refuses what is not a snapshot; recording round-trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ozwald.common.v1 import gpu_pb2

from ozwald_agent.hardware.profile import detect_gpus
from ozwald_agent.hardware.snapshot import load_snapshot, record_snapshot, sources_from_snapshot
from ozwald_agent.hardware.sources import HardwareSources
from tests.unit.hardware.snapshots import nvml, nvml_device, snapshot, sources, value

FIXTURES = sorted((Path(__file__).parents[2] / "fixtures" / "hardware").glob("*.json"))


def _without_origin(reports: list[gpu_pb2.GpuVendorReport]) -> list[gpu_pb2.GpuVendorReport]:
    for report in reports:
        report.detail = report.detail.split(" [simulated from")[0]
    return reports


@pytest.mark.parametrize("path", FIXTURES, ids=[p.name for p in FIXTURES])
def test_recording_a_replayed_fixture_gives_the_same_reports(path: Path) -> None:
    original = load_snapshot(path)

    recorded = json.loads(json.dumps(record_snapshot(original)))

    again = sources_from_snapshot(recorded, origin="again")
    assert _without_origin(detect_gpus(again)) == _without_origin(detect_gpus(original))
    # The recording keeps only files the detectors read, each exactly as it was.
    assert recorded["sysfs"].items() <= json.loads(path.read_text())["sysfs"].items()


def test_this_hosts_snapshot_replays_to_what_live_detection_reports() -> None:
    live = detect_gpus(HardwareSources.real())

    replayed = detect_gpus(sources_from_snapshot(record_snapshot(), origin="here"))

    assert [(r.absence_reason, len(r.devices)) for r in replayed] == [
        (r.absence_reason, len(r.devices)) for r in live
    ]
    assert _without_origin(replayed) == _without_origin(live)


def test_a_recorded_snapshot_has_the_documented_shape() -> None:
    recorded = record_snapshot(description="bench 3")

    assert recorded["format_version"] == 1
    assert recorded["description"] == "bench 3"
    assert set(recorded) == {
        "format_version",
        "description",
        "recorded_at",
        "nvml",
        "amdsmi",
        "sysfs",
        "dev",
    }
    json.dumps(recorded)


def test_a_call_missing_from_the_snapshot_becomes_a_warning_not_a_crash() -> None:
    device = nvml_device()
    del device["name"]

    nvidia, _ = detect_gpus(sources(nvml=nvml(device)))

    assert nvidia.present
    assert nvidia.devices[0].name == ""
    assert list(nvidia.warnings) == [
        "GPU 0: name: the snapshot has no answer for nvml.devices[0].name (NOT_RECORDED)"
    ]


def test_a_device_count_larger_than_the_devices_recorded_leaves_the_rest_out() -> None:
    nvidia, _ = detect_gpus(sources(nvml=nvml(nvml_device(), count=value(2))))

    assert len(nvidia.devices) == 1
    assert "GPU 1 left out" in nvidia.warnings[0]
    assert "NOT_RECORDED" in nvidia.warnings[0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format_version": 2}, "format_version must be 1"),
        ({"gpus": []}, "unknown keys ['gpus']"),
        ({"nvml": {"init": {"value": None}, "driver": {}}}, "nvml: unknown keys ['driver']"),
        ({"nvml": nvml(count=value("8"))}, "nvml.device_count.value: expected an integer"),
        ({"nvml": nvml(count=value(True))}, "nvml.device_count.value: expected an integer"),
        ({"nvml": nvml(count={"value": 1, "error": {}})}, "nvml.device_count: expected"),
        (
            {"nvml": nvml(nvml_device(memory=value({"total": 1, "free": 1})))},
            "nvml.devices[0].memory.value.used: expected an integer",
        ),
        ({"amdsmi": {"init": {"error": {"message": "x"}}}}, "amdsmi.init: expected"),
        ({"sysfs": {"../../etc/cron.d/x": "boom"}}, "must be relative and stay inside"),
        ({"sysfs": {"/etc/passwd": "boom"}}, "must be relative and stay inside"),
        ({"dev": ["kfd", 3]}, "dev[]: expected a string"),
        ({"sysfs": {"class/drm/card0/device/vendor": 4098}}, "expected a string"),
    ],
)
def test_loading_refuses_a_malformed_snapshot_naming_the_key(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(snapshot() | change))

    with pytest.raises(ValueError, match=r"bad\.json") as refused:
        load_snapshot(path)

    assert message in str(refused.value)


def test_loading_refuses_a_file_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    path.write_text("nvml: yes\n")

    with pytest.raises(ValueError, match="is not JSON"):
        load_snapshot(path)


def test_loading_a_missing_file_raises_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        load_snapshot(tmp_path / "absent.json")


def test_a_loaded_snapshot_writes_its_files_into_a_private_directory() -> None:
    replay = sources(sysfs={"class/drm/card0/device/vendor": "0x1002\n"}, dev=["kfd"])

    assert (replay.sysfs_root / "class/drm/card0/device/vendor").read_text() == "0x1002\n"
    assert (replay.dev_root / "kfd").exists()
    assert replay.snapshot_dir is not None
    assert replay.sysfs_root.is_relative_to(replay.snapshot_dir.name)
