"""Sampling one running container's memory, CPU and VRAM until it is stopped.

A thread reads the engine's stats every `interval_s` (and the container's VRAM through
NVML when it has GPUs); `finish()` stops it, takes one last sample and asks the kernel
for its own peak where the engine's stats do not carry it (cgroup v2). The figures:

- peak memory: the kernel's peak when there is one (cgroup v1 `max_usage`, cgroup v2
  `memory.peak`), never below the highest sampled usage; else the highest sampled usage.
- peak CPU: the highest use between two consecutive samples; mean CPU: CPU time between
  the first and the last sample over the wall time between them.
- VRAM: see `vram.py`.

A sample that fails (the engine is slow, the container just exited) is skipped: a
footprint from fewer samples is still a footprint.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ozwald.agent.v1 import footprint_pb2

from ozwald_agent.profiling.stats import StatsSample, cpu_cores, mean_cpu_cores, parse_stats
from ozwald_agent.profiling.vram import VramSampler
from ozwald_agent.runtime.errors import ContainerRuntimeError

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 0.5
V1 = footprint_pb2.MEMORY_PEAK_SOURCE_CGROUP_V1_MAX_USAGE
V2 = footprint_pb2.MEMORY_PEAK_SOURCE_CGROUP_V2_MEMORY_PEAK
SAMPLED = footprint_pb2.MEMORY_PEAK_SOURCE_SAMPLED_USAGE


class StatsSource(Protocol):
    def stats(self, container: str) -> Mapping[str, Any]: ...

    def host_pids(self, container: str) -> set[int]: ...


@dataclass
class Measurement:
    peak_memory_bytes: int = 0
    memory_peak_source: footprint_pb2.MemoryPeakSource.ValueType = SAMPLED
    peak_cpu_cores: float = 0.0
    mean_cpu_cores: float = 0.0
    samples: int = 0
    measured_for_s: float = 0.0
    vram_peaks: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class Tracker:
    """Folds samples into peaks and means. Pure: the sampler feeds it."""

    def __init__(self) -> None:
        self.samples = 0
        self.sampled_peak = 0
        self.kernel_peak_v1: int | None = None
        self.peak_cpu = 0.0
        self._first: StatsSample | None = None
        self._previous: StatsSample | None = None
        self._last: StatsSample | None = None

    def add(self, sample: StatsSample) -> None:
        if sample.memory_usage is None and sample.cpu_total_ns is None:
            return  # not running: the engine answers an empty reading
        self.samples += 1
        if sample.memory_usage is not None:
            self.sampled_peak = max(self.sampled_peak, sample.memory_usage)
        if sample.memory_max_usage is not None:
            self.kernel_peak_v1 = max(self.kernel_peak_v1 or 0, sample.memory_max_usage)
        if self._previous is not None:
            cores = cpu_cores(self._previous, sample)
            if cores is not None:
                self.peak_cpu = max(self.peak_cpu, cores)
        if self._first is None:
            self._first = sample
        self._previous = sample
        self._last = sample

    def mean_cpu(self) -> float:
        if self._first is None or self._last is None:
            return 0.0
        return mean_cpu_cores(self._first, self._last) or 0.0

    def memory(
        self, kernel_peak_v2: int | None
    ) -> tuple[int, footprint_pb2.MemoryPeakSource.ValueType]:
        """The peak and where it came from; see the module docstring."""
        if self.kernel_peak_v1 is not None:
            return max(self.kernel_peak_v1, self.sampled_peak), V1
        if kernel_peak_v2 is not None:
            return max(kernel_peak_v2, self.sampled_peak), V2
        return self.sampled_peak, SAMPLED


class ResourceSampler:
    """Samples `container` on a thread from `start()` until `finish()`."""

    def __init__(
        self,
        source: StatsSource,
        container: str,
        *,
        vram: VramSampler | None = None,
        kernel_peak: Callable[[], int | None] = lambda: None,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._container = container
        self._vram = vram
        self._kernel_peak = kernel_peak
        self._interval_s = interval_s
        self._clock = clock
        self._tracker = Tracker()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._began = clock()
        self._last_sample_at = self._began
        self._failures: list[str] = []

    def start(self) -> None:
        self._began = self._clock()
        self._thread = threading.Thread(target=self._run, name="profile-sampler", daemon=True)
        self._thread.start()

    def sample(self) -> None:
        try:
            stats = self._source.stats(self._container)
            pids: Collection[int] = ()
            if self._vram is not None and self._vram.active:
                pids = self._source.host_pids(self._container)
        except ContainerRuntimeError as e:
            with self._lock:
                if not self._failures:
                    logger.info("a profiling sample failed: %s", e)
                self._failures.append(str(e))
            return
        with self._lock:
            self._tracker.add(parse_stats(stats))
            if self._vram is not None:
                self._vram.sample(pids)
            self._last_sample_at = self._clock()

    def finish(self) -> Measurement:
        """Stops sampling, takes a last sample while the container still runs, and sums up."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.sample()
        kernel_v2 = None if self._tracker.kernel_peak_v1 is not None else self._kernel_peak()
        with self._lock:
            tracker = self._tracker
            peak, source = tracker.memory(kernel_v2)
            measurement = Measurement(
                peak_memory_bytes=peak,
                memory_peak_source=source,
                peak_cpu_cores=tracker.peak_cpu,
                mean_cpu_cores=tracker.mean_cpu(),
                samples=tracker.samples,
                measured_for_s=self._last_sample_at - self._began,
            )
        if self._vram is not None:
            measurement.vram_peaks = dict(self._vram.result.peaks)
            measurement.notes.extend(self._vram.result.notes)
            self._vram.close()
        if tracker.samples == 0:
            measurement.notes.append("no resource sample came back: memory and CPU not measured")
        return measurement

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self._interval_s)
