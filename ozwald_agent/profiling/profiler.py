"""Profiling: measure a service's footprint by running an isolated copy of it.

For each service, one after the other (measurements taken side by side would skew each
other, so one profiling run holds the host's profiling slot at a time):

    ADMITTING -> STARTING -> WAITING_FOR_READY -> WARMING_UP -> STOPPING -> DONE
                     \\______________\\________________\\__________-> STOPPING -> FAILED

1. Admission plans a copy of the service (`provisioning/profiled_copy.py`) beside
   everything that runs now; the copy's CPUs and GPUs stay reserved in every plan until
   its measurement ends, so an apply meanwhile cannot promise them to another service.
2. The copy starts in isolation (`runtime/profiling_copies.py`); a sampler reads its
   memory, CPU and VRAM from then on (`sampler.py`).
3. Readiness follows the service's own health check, with the reconciler's rules: a
   container that exits, or a check that fails `retries` times after `start_period`, fails
   the profiling; so does the ready timeout. Time to ready is from the start call to the
   first passed check; probes come every 50 ms at first, doubling to at most 0.5 s, so it
   is exact to about half a second.
4. A service declaring `openai` gets the warm-up load (`warmup.py`); then the sampler runs
   on for `settle_s`, so a service without a warm-up still has a few samples after ready.
5. The copy is stopped and removed (also on failure, on cancellation and on agent
   shutdown), and the footprint is stored.

Nothing here touches the running services, the desired state or the reconciler.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from google.protobuf import duration_pb2, timestamp_pb2
from ozwald.agent.v1 import agent_service_pb2, footprint_pb2, plan_pb2
from ozwald.common.v1 import gpu_pb2, host_profile_pb2, service_spec_pb2

from ozwald_agent.hardware.nvml_library import NvmlLibrary
from ozwald_agent.profiling.cgroup_peak import memory_peak
from ozwald_agent.profiling.sampler import Measurement, ResourceSampler, StatsSource
from ozwald_agent.profiling.vram import GpuDevice, VramSampler
from ozwald_agent.profiling.warmup import WarmUpResult, warm_up
from ozwald_agent.provisioning.provisioner import AdmissionRefusedError, Provisioner
from ozwald_agent.runtime.container_info import ContainerInfo
from ozwald_agent.runtime.errors import ContainerRuntimeError
from ozwald_agent.runtime.gpus import GpuAssignment
from ozwald_agent.runtime.probes import ProbeTarget, run_probe
from ozwald_agent.state.footprints import FootprintStore
from ozwald_sdk.fingerprint import fingerprint as spec_fingerprint

logger = logging.getLogger(__name__)

pb = agent_service_pb2
DEFAULT_WARMUP_REQUESTS = 8
DEFAULT_WARMUP_REQUEST_TIMEOUT_S = 60.0
MIN_READY_TIMEOUT_S = 120.0
DEFAULT_PROBE_INTERVAL_S = 2.0
DEFAULT_PROBE_RETRIES = 3
FIRST_PROBE_S = 0.05
LONGEST_PROBE_GAP_S = 0.5
SETTLE_S = 1.0
LOG_LINES_KEPT = 20
# How often a waiting service's progress is repeated when nothing changes.
PROGRESS_EVERY_S = 2.0


class CopyEngine(StatsSource, ProbeTarget, Protocol):
    """What profiling needs from the container engine (ProfilingCopies fits)."""

    def network_of(self, run_id: str) -> str: ...

    def create(
        self,
        spec: service_spec_pb2.ServiceSpec,
        *,
        run_id: str,
        fingerprint: str,
        gpus: GpuAssignment | None,
    ) -> ContainerInfo: ...

    def start(self, container: str) -> None: ...

    def inspect(self, container: str) -> ContainerInfo: ...

    def logs(self, container: str, *, tail: int) -> list[str]: ...

    def discard(self, run_id: str) -> None: ...

    def discard_leftovers(self) -> list[str]: ...


@dataclass(frozen=True)
class ProfileOptions:
    warmup_requests: int = DEFAULT_WARMUP_REQUESTS
    # None: from the health check (see `_ready_timeout`).
    ready_timeout_s: float | None = None
    warmup_request_timeout_s: float = DEFAULT_WARMUP_REQUEST_TIMEOUT_S


class _Failed(Exception):
    def __init__(self, detail: str, logs: Sequence[str] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.logs = list(logs)


class _Cancelled(Exception):
    pass


class Profiler:
    def __init__(
        self,
        provisioner: Provisioner,
        engine: CopyEngine,
        store: FootprintStore,
        host_profile: Callable[[], host_profile_pb2.HostProfile],
        open_nvml: Callable[[], NvmlLibrary],
        *,
        sample_interval_s: float = 0.5,
        settle_s: float = SETTLE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._provisioner = provisioner
        self._engine = engine
        self._store = store
        self._host_profile = host_profile
        self._open_nvml = open_nvml
        self._sample_interval_s = sample_interval_s
        self._settle_s = settle_s
        self._clock = clock
        self._slot = threading.Lock()

    def clean_up_leftovers(self) -> None:
        """Removes copies a killed agent left behind; a failure is logged, not raised."""
        with self._slot:
            self._discard_leftovers()

    def _discard_leftovers(self) -> None:
        """Under the slot: no run is on, so every copy found is a leftover."""
        try:
            removed = self._engine.discard_leftovers()
        except ContainerRuntimeError as e:
            logger.warning("could not look for leftover profiling copies: %s", e)
            return
        if removed:
            logger.warning(
                "removed %d profiling cop%s left by an earlier agent: %s",
                len(removed),
                "y" if len(removed) == 1 else "ies",
                ", ".join(removed),
            )

    def check_fits(self, specs: Sequence[service_spec_pb2.ServiceSpec]) -> None:
        """Raises AdmissionRefusedError (the first refused plan) when any copy does not fit
        now; changes nothing."""
        refused = [
            result
            for result, _ in (
                self._provisioner.admit_profiled_copy(s, reserve=False) for s in specs
            )
            if not result.admitted
        ]
        if refused:
            combined = plan_pb2.Plan()
            combined.CopyFrom(refused[0])
            for other in refused[1:]:
                combined.refusals.extend(other.refusals)
            raise AdmissionRefusedError(combined)

    def profile(
        self,
        specs: Sequence[service_spec_pb2.ServiceSpec],
        options: ProfileOptions,
        cancel: threading.Event,
    ) -> Iterator[pb.ProfileServicesResponse]:
        """Progress of each service in turn; ends early (quietly) when `cancel` is set."""
        total = len(specs)
        if not self._slot.acquire(blocking=False):
            first = specs[0]
            yield _message(
                first,
                index=1,
                total=total,
                phase=pb.PROFILE_PHASE_ADMITTING,
                elapsed_s=0.0,
                detail="waiting for another profiling run on this host to end",
            )
            while not self._slot.acquire(timeout=0.5):
                if cancel.is_set():
                    return
        try:
            self._discard_leftovers()
            for index, spec in enumerate(specs, start=1):
                if cancel.is_set():
                    return
                try:
                    yield from _Run(
                        self, spec, index=index, total=total, options=options, cancel=cancel
                    ).messages()
                except _Cancelled:
                    return
        finally:
            self._slot.release()

    # For _Run ------------------------------------------------------------------------

    def _record(self, footprint: footprint_pb2.Footprint) -> None:
        self._store.record(footprint)


class _Run:
    """The profiling of one service."""

    def __init__(
        self,
        profiler: Profiler,
        spec: service_spec_pb2.ServiceSpec,
        *,
        index: int,
        total: int,
        options: ProfileOptions,
        cancel: threading.Event,
    ) -> None:
        self.p = profiler
        self.spec = spec
        self.index, self.total = index, total
        self.options = options
        self.cancel = cancel
        self.run_id = uuid.uuid4().hex[:12]
        self.began = profiler._clock()
        plannable = service_spec_pb2.ServiceSpec()
        plannable.CopyFrom(spec)
        plannable.persistent = False
        self.fingerprint = spec_fingerprint(plannable)
        self.container_id = ""
        self.sampler: ResourceSampler | None = None

    def emit(
        self, phase: pb.ProfilePhase.ValueType, detail: str = ""
    ) -> pb.ProfileServicesResponse:
        return _message(
            self.spec,
            index=self.index,
            total=self.total,
            phase=phase,
            elapsed_s=self.p._clock() - self.began,
            detail=detail,
        )

    def messages(self) -> Iterator[pb.ProfileServicesResponse]:
        yield self.emit(pb.PROFILE_PHASE_ADMITTING, "checking that a copy fits beside what runs")
        admitted, copy = self.p._provisioner.admit_profiled_copy(self.spec, reserve=True)
        if not admitted.admitted:
            failed = self.emit(pb.PROFILE_PHASE_FAILED, _refused_detail(admitted))
            failed.refusals.extend(admitted.refusals)
            yield failed
            return
        try:
            yield from self._measure(admitted, copy)
        finally:
            self._discard()
            self.p._provisioner.release_profiled_copy()

    def _measure(
        self, admitted: plan_pb2.Plan, copy: service_spec_pb2.ServiceSpec
    ) -> Iterator[pb.ProfileServicesResponse]:
        try:
            yield self.emit(pb.PROFILE_PHASE_STARTING, "creating and starting an isolated copy")
            started = self._start(admitted, copy)
            yield self.emit(pb.PROFILE_PHASE_WAITING_FOR_READY, "container started")
            time_to_ready = yield from self._wait_until_ready(started)
            warm = yield from self._warm_up()
            if self.cancel.wait(self.p._settle_s):
                raise _Cancelled
            self._check_still_running()
            assert self.sampler is not None
            measurement = self.sampler.finish()
            self.sampler = None
        except _Failed as e:
            yield self.emit(pb.PROFILE_PHASE_STOPPING, "stopping and removing the copy")
            self._discard()
            failed = self.emit(pb.PROFILE_PHASE_FAILED, e.detail)
            failed.last_log_lines.extend(e.logs)
            yield failed
            return
        except ContainerRuntimeError as e:
            yield self.emit(pb.PROFILE_PHASE_STOPPING, "stopping and removing the copy")
            self._discard()
            yield self.emit(pb.PROFILE_PHASE_FAILED, f"the container engine failed: {e}")
            return
        yield self.emit(pb.PROFILE_PHASE_STOPPING, "stopping and removing the copy")
        self._discard()
        footprint = self._footprint(time_to_ready, measurement, warm)
        self.p._record(footprint)
        logger.info(
            "profiled %s:%s: ready in %.1f s, peak memory %d bytes",
            self.spec.realm,
            self.spec.name,
            time_to_ready,
            footprint.peak_memory_bytes,
            extra={"realm": self.spec.realm, "service": self.spec.name},
        )
        done = self.emit(pb.PROFILE_PHASE_DONE, "footprint stored")
        done.footprint.CopyFrom(footprint)
        yield done

    # Steps -----------------------------------------------------------------------

    def _start(self, admitted: plan_pb2.Plan, copy: service_spec_pb2.ServiceSpec) -> float:
        action = next(a for a in admitted.actions if (a.realm, a.name) == (copy.realm, copy.name))
        container_spec = service_spec_pb2.ServiceSpec()
        container_spec.CopyFrom(copy)
        container_spec.name = self.spec.name
        # The plan pinned each locker's current revision (admission refused a locked
        # vault or a missing locker): the copy gets what the service would.
        del container_spec.secret_lockers[:]
        container_spec.secret_lockers.extend(action.spec.secret_lockers)
        gpus = self._gpus(action.gpus)
        info = self.p._engine.create(
            container_spec, run_id=self.run_id, fingerprint=self.fingerprint, gpus=gpus
        )
        self.container_id = info.id
        vram = None
        if gpus is not None and gpus.vendor == gpu_pb2.GPU_VENDOR_NVIDIA:
            vram = VramSampler(
                self.p._open_nvml,
                [GpuDevice(d.uuid, d.index, d.name) for d in action.gpus.devices],
            )
        started = self.p._clock()
        self.p._engine.start(info.id)
        self.sampler = ResourceSampler(
            self.p._engine,
            info.id,
            vram=vram,
            kernel_peak=self._kernel_peak,
            interval_s=self.p._sample_interval_s,
            clock=self.p._clock,
        )
        self.sampler.start()
        if gpus is not None and vram is None:
            self.note = "VRAM not measured: only NVIDIA GPUs are measured"
        return started

    def _wait_until_ready(
        self, started: float
    ) -> Generator[pb.ProfileServicesResponse, None, float]:
        """Yields progress; returns the seconds from start to ready (via StopIteration)."""
        check = self.spec.health_check
        interval = _seconds(check.interval) or DEFAULT_PROBE_INTERVAL_S
        retries = check.retries or DEFAULT_PROBE_RETRIES
        count_from = started + _seconds(check.start_period)
        timeout = self._ready_timeout()
        network = self.p._engine.network_of(self.run_id)
        failures, probes = 0, 0
        next_count_at = count_from
        last_detail, last_sent = "", self.p._clock()
        while True:
            info = self.p._engine.inspect(self.container_id)
            if not info.running:
                code = info.exit_code if info.exit_code is not None else -1
                oom = " (out of memory)" if info.oom_killed else ""
                raise _Failed(f"exited with code {code}{oom} before it was ready", self._logs())
            result = run_probe(
                self.p._engine,
                self.container_id,
                check,
                self.spec.connector_port,
                network=network,
            )
            now = self.p._clock()
            if result.ok:
                return now - started
            if now >= count_from and now >= next_count_at:
                failures += 1
                next_count_at = now + interval
                if failures >= retries:
                    raise _Failed(f"health check never passed: {result.detail}", self._logs())
            if now - started > timeout:
                raise _Failed(f"not ready after {timeout:g} s: {result.detail}", self._logs())
            if result.detail != last_detail or now - last_sent >= PROGRESS_EVERY_S:
                last_detail, last_sent = result.detail, now
                yield self.emit(pb.PROFILE_PHASE_WAITING_FOR_READY, result.detail)
            probes += 1
            delay = min(FIRST_PROBE_S * 2.0 ** (probes - 1), LONGEST_PROBE_GAP_S, interval)
            if self.cancel.wait(delay):
                raise _Cancelled

    def _warm_up(self) -> Generator[pb.ProfileServicesResponse, None, footprint_pb2.WarmUp]:
        """Yields progress; returns the WarmUp record (via StopIteration)."""
        requests = self.options.warmup_requests
        endpoint = self.spec.openai
        if endpoint.api == service_spec_pb2.OPEN_AI_API_UNSPECIFIED:
            return footprint_pb2.WarmUp(skipped_reason="the service declares no openai API")
        if requests == 0:
            return footprint_pb2.WarmUp(
                api=endpoint.api, skipped_reason="no warm-up asked for (--warmup 0)"
            )
        if not self.spec.connector_port:
            return footprint_pb2.WarmUp(
                api=endpoint.api, skipped_reason="the service has no connector_port to call"
            )
        address = self.p._engine.container_ip(
            self.container_id, network=self.p._engine.network_of(self.run_id)
        )
        base_url = f"http://{_host(address)}:{self.spec.connector_port}/v1"
        progress: list[pb.ProfileServicesResponse] = []

        def on_request(done: int, result: WarmUpResult) -> None:
            message = self.emit(
                pb.PROFILE_PHASE_WARMING_UP,
                f"{done}/{requests} requests"
                + (f", {result.errors} failed" if result.errors else ""),
            )
            message.warmup_done, message.warmup_total = done, requests
            progress.append(message)

        first = self.emit(pb.PROFILE_PHASE_WARMING_UP, f"0/{requests} requests to {base_url}")
        first.warmup_total = requests
        yield first
        # The client blocks per request; progress is sent between requests, from a thread
        # so that the stream keeps moving while a slow request runs.
        outcome: list[WarmUpResult] = []
        worker = threading.Thread(
            target=lambda: outcome.append(
                warm_up(
                    base_url,
                    endpoint,
                    requests,
                    self.options.warmup_request_timeout_s,
                    on_request=on_request,
                    cancelled=self.cancel.is_set,
                )
            ),
            name="profile-warmup",
            daemon=True,
        )
        worker.start()
        sent = 0
        while worker.is_alive() or sent < len(progress):
            worker.join(timeout=0.2)
            while sent < len(progress):
                yield progress[sent]
                sent += 1
            if self.cancel.is_set() and not worker.is_alive():
                raise _Cancelled
        if self.cancel.is_set():
            raise _Cancelled
        result = outcome[0] if outcome else WarmUpResult(api=endpoint.api, last_error="crashed")
        warm = footprint_pb2.WarmUp(
            api=result.api,
            model=result.model,
            requests=result.requests,
            errors=result.errors,
            duration=_duration(result.duration_s),
            last_error=result.last_error,
        )
        return warm

    def _check_still_running(self) -> None:
        info = self.p._engine.inspect(self.container_id)
        if not info.running:
            code = info.exit_code if info.exit_code is not None else -1
            oom = " (out of memory)" if info.oom_killed else ""
            raise _Failed(f"exited with code {code}{oom} after it was ready", self._logs())

    # Helpers -----------------------------------------------------------------------

    note = ""

    def _footprint(
        self, time_to_ready: float, measurement: Measurement, warm: footprint_pb2.WarmUp
    ) -> footprint_pb2.Footprint:
        host = self.p._host_profile()
        footprint = footprint_pb2.Footprint(
            realm=self.spec.realm,
            service=self.spec.name,
            variety=self.spec.variety,
            profile=self.spec.profile,
            fingerprint=self.fingerprint,
            host=_measured_host(host),
            time_to_ready=_duration(time_to_ready),
            peak_memory_bytes=measurement.peak_memory_bytes,
            memory_peak_source=measurement.memory_peak_source,
            peak_cpu_cores=round(measurement.peak_cpu_cores, 3),
            mean_cpu_cores=round(measurement.mean_cpu_cores, 3),
            warm_up=warm,
            samples=measurement.samples,
            measured_for=_duration(measurement.measured_for_s),
            notes=[*measurement.notes, *([self.note] if self.note else [])],
        )
        footprint.measured_at.CopyFrom(_now())
        names = {d.uuid: (d.index, d.name) for report in host.gpu_vendors for d in report.devices}
        for gpu_uuid, peak in sorted(measurement.vram_peaks.items()):
            index, name = names.get(gpu_uuid, (0, ""))
            footprint.gpus.add(uuid=gpu_uuid, index=index, name=name, peak_bytes=peak)
        if footprint.gpus:
            footprint.peak_vram_bytes_per_gpu = max(g.peak_bytes for g in footprint.gpus)
        return footprint

    def _gpus(self, assignment: plan_pb2.GpuAssignment) -> GpuAssignment | None:
        uuids = tuple(d.uuid for d in assignment.devices)
        if not uuids:
            return None
        render_nodes: tuple[str, ...] = ()
        if assignment.vendor == gpu_pb2.GPU_VENDOR_AMD:
            by_uuid = {
                d.uuid: d.render_node
                for report in self.p._host_profile().gpu_vendors
                for d in report.devices
            }
            render_nodes = tuple(by_uuid.get(u, "") for u in uuids)
        return GpuAssignment(assignment.vendor, uuids, render_nodes)

    def _kernel_peak(self) -> int | None:
        try:
            pid = self.p._engine.inspect(self.container_id).pid
        except ContainerRuntimeError:
            return None
        return memory_peak(pid)

    def _ready_timeout(self) -> float:
        if self.options.ready_timeout_s is not None:
            return self.options.ready_timeout_s
        check = self.spec.health_check
        interval = _seconds(check.interval) or DEFAULT_PROBE_INTERVAL_S
        retries = check.retries or DEFAULT_PROBE_RETRIES
        return max(MIN_READY_TIMEOUT_S, _seconds(check.start_period) + interval * (retries + 1))

    def _logs(self) -> list[str]:
        if not self.container_id:
            return []
        try:
            return self.p._engine.logs(self.container_id, tail=LOG_LINES_KEPT)
        except ContainerRuntimeError as e:
            return [f"(logs unavailable: {e})"]

    def _discard(self) -> None:
        if self.sampler is not None:
            sampler, self.sampler = self.sampler, None
            sampler.finish()
        try:
            self.p._engine.discard(self.run_id)
        except ContainerRuntimeError as e:
            logger.warning(
                "could not remove profiling copy %s (the next run or agent start will): %s",
                self.run_id,
                e,
            )


def _message(
    spec: service_spec_pb2.ServiceSpec,
    *,
    index: int,
    total: int,
    phase: pb.ProfilePhase.ValueType,
    elapsed_s: float,
    detail: str,
) -> pb.ProfileServicesResponse:
    return pb.ProfileServicesResponse(
        service=plan_pb2.ServiceRef(realm=spec.realm, name=spec.name),
        variety=spec.variety,
        profile=spec.profile,
        index=index,
        total=total,
        phase=phase,
        detail=detail,
        elapsed=_duration(elapsed_s),
    )


def _refused_detail(refused: plan_pb2.Plan) -> str:
    first = refused.refusals[0].message if refused.refusals else "admission refused it"
    more = f" (and {len(refused.refusals) - 1} more)" if len(refused.refusals) > 1 else ""
    return f"does not fit now: {first}{more}"


def _measured_host(host: host_profile_pb2.HostProfile) -> footprint_pb2.MeasuredHost:
    measured = footprint_pb2.MeasuredHost(
        hostname=host.hostname,
        cpu_model=host.cpu.model,
        logical_cores=host.cpu.logical_cores,
        memory_total_bytes=host.memory.total_bytes,
        agent_version=host.agent_version,
    )
    for report in host.gpu_vendors:
        for device in report.devices:
            measured.gpus.add(
                vendor=report.vendor,
                name=device.name,
                uuid=device.uuid,
                total_bytes=device.memory_total_bytes,
            )
    return measured


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def _seconds(duration: duration_pb2.Duration) -> float:
    return duration.seconds + duration.nanos / 1e9


def _duration(seconds: float) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromNanoseconds(round(max(seconds, 0.0) * 1e9))
    return out


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp
