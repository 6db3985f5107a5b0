"""Peak VRAM of one container's processes, per GPU, through NVML.

NVML's nvmlDeviceGetComputeRunningProcesses lists, per device, the processes holding
memory on it with their host pids and bytes. A container's processes are known by their
host pids too (the engine's `top`), so the container's use of a device is the sum over
the listed processes whose pid is the container's. Each sample keeps the highest sum per
device seen so far.

Only the GPUs admission assigned to the copy are asked about (the container sees no
other). A failing NVML call, or a driver that does not say how much a process holds
(used_bytes None, e.g. on some vGPU setups), is noted once and that device keeps the
peak it had; the footprint then carries the note.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from ozwald_agent.hardware.library_error import LibraryCallError
from ozwald_agent.hardware.nvml_library import NvmlLibrary


@dataclass(frozen=True)
class GpuDevice:
    uuid: str
    index: int
    name: str


@dataclass
class VramPeaks:
    """Peak bytes per device uuid, and what could not be measured."""

    peaks: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


class VramSampler:
    """Samples the container's VRAM on `devices`; `close()` shuts NVML down."""

    def __init__(
        self, open_nvml: Callable[[], NvmlLibrary], devices: Collection[GpuDevice]
    ) -> None:
        self.devices = tuple(devices)
        self.result = VramPeaks()
        self._nvml: NvmlLibrary | None = None
        self._indexes: dict[str, int] = {}
        if not self.devices:
            return
        nvml = open_nvml()
        try:
            nvml.init()
        except LibraryCallError as e:
            self.result.note(f"VRAM not measured: NVML did not start ({e.code}: {e.message})")
            return
        self._nvml = nvml
        # NVML enumerates by index; the profile's index may be stale, the uuid is not.
        by_uuid: dict[str, int] = {}
        try:
            for index in range(nvml.device_count()):
                by_uuid[nvml.device_uuid(index)] = index
        except LibraryCallError as e:
            self.result.note(f"VRAM not measured: NVML could not list devices ({e.code})")
            self.close()
            return
        missing = [d.uuid for d in self.devices if d.uuid not in by_uuid]
        for uuid in missing:
            self.result.note(f"VRAM of {uuid} not measured: NVML does not list it")
        self._indexes = {d.uuid: by_uuid[d.uuid] for d in self.devices if d.uuid in by_uuid}
        self.result.peaks.update({uuid: 0 for uuid in self._indexes})

    @property
    def active(self) -> bool:
        return self._nvml is not None

    def sample(self, pids: Collection[int]) -> Mapping[str, int]:
        """The container's VRAM per device now (and the peaks updated); {} when off."""
        if self._nvml is None:
            return {}
        wanted = set(pids)
        now: dict[str, int] = {}
        for uuid, index in self._indexes.items():
            try:
                processes = self._nvml.device_compute_processes(index)
            except LibraryCallError as e:
                self.result.note(f"VRAM of {uuid}: NVML failed ({e.code}: {e.message})")
                continue
            used = 0
            for process in processes:
                if process.pid not in wanted:
                    continue
                if process.used_bytes is None:
                    self.result.note(
                        f"VRAM of {uuid}: the driver does not report per-process memory"
                    )
                    continue
                used += process.used_bytes
            now[uuid] = used
            self.result.peaks[uuid] = max(self.result.peaks.get(uuid, 0), used)
        return now

    def close(self) -> None:
        nvml, self._nvml = self._nvml, None
        if nvml is not None:
            with contextlib.suppress(LibraryCallError):
                nvml.shutdown()
