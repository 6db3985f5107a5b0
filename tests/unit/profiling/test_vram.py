"""Per-process VRAM through NVML, replayed from the recorded H100 x8 snapshot: which of a
device's processes are the container's, and the peak over samples."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ozwald_agent.hardware.nvml_library import NvmlLibrary
from ozwald_agent.hardware.nvml_replay import ReplayNvmlLibrary
from ozwald_agent.profiling.vram import GpuDevice, VramSampler

FIXTURE = Path(__file__).parents[2] / "fixtures" / "hardware" / "nvidia_h100_x8.json"
GIB = 1024**3


def h100_section() -> dict[str, Any]:
    section: dict[str, Any] = json.loads(FIXTURE.read_text())["nvml"]
    return section


def device(section: dict[str, Any], index: int) -> GpuDevice:
    uuid = section["devices"][index]["uuid"]["value"]
    return GpuDevice(uuid=uuid, index=index, name="NVIDIA H100 80GB HBM3")


def with_processes(section: dict[str, Any], per_device: dict[int, object]) -> dict[str, Any]:
    """The recorded snapshot, with the compute processes each device answers replaced."""
    changed = copy.deepcopy(section)
    for index, answer in per_device.items():
        changed["devices"][index]["compute_processes"] = answer
    return changed


class Replays:
    """One replayed NVML per sample, in turn: the answers change over time like a GPU's."""

    def __init__(self, sections: list[dict[str, Any]]) -> None:
        self._libraries: Iterator[ReplayNvmlLibrary] = iter(ReplayNvmlLibrary(s) for s in sections)
        self.current = next(self._libraries)

    def advance(self) -> None:
        self.current = next(self._libraries)

    def opener(self) -> Callable[[], NvmlLibrary]:
        return lambda: _Forwarding(self)


class _Forwarding:
    """An NvmlLibrary that answers with whichever replay is current."""

    def __init__(self, replays: Replays) -> None:
        self._replays = replays

    def __getattr__(self, name: str) -> Any:
        return getattr(self._replays.current, name)


def test_the_containers_processes_are_summed_per_device_and_the_peak_is_kept() -> None:
    base = h100_section()
    ours, theirs = {1001, 1002}, 48213
    samples: list[dict[int, object]] = [
        {2: {"value": [{"pid": 1001, "used_bytes": 1 * GIB}]}, 3: {"value": []}},
        {
            2: {
                "value": [
                    {"pid": 1001, "used_bytes": 6 * GIB},
                    {"pid": 1002, "used_bytes": 2 * GIB},
                    {"pid": theirs, "used_bytes": 40 * GIB},
                ]
            },
            3: {"value": [{"pid": 1002, "used_bytes": 3 * GIB}]},
        },
        {2: {"value": [{"pid": 1001, "used_bytes": 5 * GIB}]}, 3: {"value": []}},
    ]
    replays = Replays([with_processes(base, s) for s in samples])
    sampler = VramSampler(replays.opener(), [device(base, 2), device(base, 3)])

    seen = [dict(sampler.sample(ours))]
    for _ in samples[1:]:
        replays.advance()
        seen.append(dict(sampler.sample(ours)))
    sampler.close()

    uuid2, uuid3 = device(base, 2).uuid, device(base, 3).uuid
    assert seen == [
        {uuid2: 1 * GIB, uuid3: 0},
        {uuid2: 8 * GIB, uuid3: 3 * GIB},  # another service's 40 GiB is not ours
        {uuid2: 5 * GIB, uuid3: 0},
    ]
    assert sampler.result.peaks == {uuid2: 8 * GIB, uuid3: 3 * GIB}
    assert sampler.result.notes == []


def test_the_recorded_snapshot_as_is_shows_another_services_memory_and_not_ours() -> None:
    base = h100_section()
    sampler = VramSampler(lambda: ReplayNvmlLibrary(base), [device(base, 3)])

    assert sampler.sample({1, 2, 3}) == {device(base, 3).uuid: 0}
    assert sampler.sample({48213}) == {device(base, 3).uuid: 72944615424}


def test_failures_and_unreported_memory_become_notes_not_errors() -> None:
    base = with_processes(h100_section(), {0: {"value": [{"pid": 7, "used_bytes": None}]}})
    # Device 7 of the recording answers NVML_ERROR_NO_PERMISSION for its processes.
    sampler = VramSampler(lambda: ReplayNvmlLibrary(base), [device(base, 0), device(base, 7)])

    assert sampler.sample({7}) == {device(base, 0).uuid: 0}
    assert any("does not report per-process memory" in n for n in sampler.result.notes)
    assert any("NVML_ERROR_NO_PERMISSION" in n for n in sampler.result.notes)


def test_nvml_that_does_not_start_leaves_vram_unmeasured() -> None:
    broken = h100_section()
    broken["init"] = {"error": {"code": "NVML_ERROR_DRIVER_NOT_LOADED", "message": "no driver"}}
    sampler = VramSampler(lambda: ReplayNvmlLibrary(broken), [device(broken, 0)])

    assert not sampler.active
    assert sampler.sample({1}) == {}
    assert sampler.result.peaks == {}
    assert sampler.result.notes == [
        "VRAM not measured: NVML did not start (NVML_ERROR_DRIVER_NOT_LOADED: no driver)"
    ]


def test_a_gpu_nvml_does_not_list_is_noted() -> None:
    base = h100_section()
    ghost = GpuDevice(uuid="GPU-not-here", index=9, name="?")
    sampler = VramSampler(lambda: ReplayNvmlLibrary(base), [device(base, 1), ghost])

    assert sampler.sample({1}) == {device(base, 1).uuid: 0}
    assert sampler.result.notes == ["VRAM of GPU-not-here not measured: NVML does not list it"]
