"""On-host convergence: make the containers match the agent's desired state.

One thread runs `reconcile_once` every tick (and at once when woken by an apply or a
stop). Each pass compares the desired services in the store with the containers the
engine reports for this agent, and moves each service one step along its life:

    PENDING -> CREATING -> STARTING -> READY <-> UNHEALTHY
                              |          |          |
                              v          v          v
                           FAILED    RESTARTING (backoff) -> CREATING ...

- A container that exits, or never passes its health check, while STARTING is FAILED
  with its last log lines; it is never reported READY.
- A READY service that exits or turns unhealthy is restarted per its restart policy with
  exponential backoff, and FAILED once `max_retries` restarts are used up.
- A FAILED service stays failed until an apply re-admits it (a new generation).
- Services leave in reverse dependency order and enter in dependency order; a service
  waits in PENDING until everything it depends on is READY.
- After an agent restart the same pass adopts what runs: a container with this agent's
  labels and the desired fingerprint is probed, not recreated; anything else is removed.
  Container names are deterministic, so a crash mid-create can never duplicate one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent import futures
from typing import TypeVar

from google.protobuf import duration_pb2
from ozwald.agent.v1 import service_status_pb2
from ozwald.common.v1 import gpu_pb2, host_profile_pb2, service_spec_pb2

from ozwald_agent.admission.dependencies import start_order, stop_order
from ozwald_agent.admission.keys import ServiceKey
from ozwald_agent.provisioning.backoff import restart_delay
from ozwald_agent.provisioning.event_feed import EventFeed
from ozwald_agent.provisioning.tracked import State, Tracked
from ozwald_agent.runtime.container_info import ContainerInfo, ContainerState
from ozwald_agent.runtime.errors import ContainerRuntimeError, EngineUnavailableError
from ozwald_agent.runtime.gpus import GpuAssignment
from ozwald_agent.runtime.probes import run_probe
from ozwald_agent.runtime.protocol import ContainerRuntime
from ozwald_agent.state.store import AgentStore, DesiredService

logger = logging.getLogger(__name__)

S = service_status_pb2
TICK_S = 0.5
# While a service starts, probes come at once, then quickly (50 ms, doubling up to its
# interval), so readiness is seen within a few tens of milliseconds; failures still count
# at the declared interval, so the quick probes never fail a slow starter early.
FIRST_STARTUP_PROBE_S = 0.05
SHORTEST_WAIT_S = 0.05
# Containers created or stopped at once; more mostly queues inside the engine.
PARALLEL_ENGINE_CALLS = 4
STOP_WAIT_S = 5.0
LOG_LINES_KEPT = 20
STOP_TIMEOUT_S = 10.0
DEFAULT_PROBE_INTERVAL_S = 2.0
DEFAULT_PROBE_RETRIES = 3
NEVER_READY = (S.INSTANCE_STATE_PENDING, S.INSTANCE_STATE_CREATING, S.INSTANCE_STATE_STARTING)
RK = service_spec_pb2
T = TypeVar("T")
StatusListener = Callable[
    [service_status_pb2.InstanceStatus, service_spec_pb2.ServiceSpec | None], None
]


class Reconciler:
    """Owns the convergence thread; `wake()` asks for a pass now."""

    def __init__(
        self,
        store: AgentStore,
        runtime: ContainerRuntime,
        feed: EventFeed,
        host_profile: Callable[[], host_profile_pb2.HostProfile],
        clock: Callable[[], float] = time.monotonic,
        *,
        on_published: StatusListener | None = None,
    ) -> None:
        self._store = store
        # Told every published status (webhooks); must return at once.
        self._on_published = on_published
        self._runtime = runtime
        self._feed = feed
        self._host_profile = host_profile
        self._clock = clock
        self._tracked: dict[ServiceKey, Tracked] = {}
        # Specs seen desired, kept after they leave so stops can follow dependencies.
        self._known_specs: dict[ServiceKey, service_spec_pb2.ServiceSpec] = {}
        self._pool = futures.ThreadPoolExecutor(
            max_workers=PARALLEL_ENGINE_CALLS, thread_name_prefix="reconcile"
        )
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._engine_problem = ""
        for status in store.instances():
            self._tracked[(status.realm, status.name)] = Tracked(status=status)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="reconciler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ends the loop; waits a little for a pass in flight, never for a slow engine.

        A pass stuck in an engine call (a busy or hung dockerd) must not keep the agent
        from exiting: its threads are daemons, and what it leaves half-done (a container
        created but not started) the next agent's first pass replaces.
        """
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=STOP_WAIT_S)
            if self._thread.is_alive():
                logger.warning(
                    "a reconcile pass is still waiting for the container engine after %g s; "
                    "stopping without it",
                    STOP_WAIT_S,
                )
        self._pool.shutdown(wait=False, cancel_futures=True)

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.reconcile_once()
            except Exception:
                logger.exception("reconcile pass failed; retrying next tick")
            self._wake.wait(self._seconds_to_next_due())
            self._wake.clear()

    def _seconds_to_next_due(self) -> float:
        """Until the earliest probe or restart due, at most a tick (exits are polled)."""
        due = [
            t.next_probe_at
            for t in self._tracked.values()
            if t.state in (S.INSTANCE_STATE_STARTING, S.INSTANCE_STATE_READY)
        ] + [t.retry_at for t in self._tracked.values() if t.state == S.INSTANCE_STATE_RESTARTING]
        wait = min(due, default=self._clock() + TICK_S) - self._clock()
        # A service that has just started gets its first probe at once (many answer the
        # moment they start); that probe moves its next one on, so this cannot spin.
        just_started = any(
            t.state == S.INSTANCE_STATE_STARTING and t.startup_probes == 0
            for t in self._tracked.values()
        )
        return min(max(wait, 0.0 if just_started else SHORTEST_WAIT_S), TICK_S)

    # One pass ---------------------------------------------------------------------

    def reconcile_once(self) -> None:
        desired = {d.key: d for d in self._store.desired()}
        self._known_specs.update({key: d.spec for key, d in desired.items()})
        try:
            containers = self._containers()
        except ContainerRuntimeError as e:
            self._note_engine_problem(str(e))
            return
        self._note_engine_problem("")
        self._stop_unwanted(desired, containers)
        will_run = {key: d.spec for key, d in desired.items()}
        creating: list[tuple[Tracked, DesiredService]] = []
        for key in start_order(will_run, will_run.keys()):
            if self._stopping.is_set():
                return
            self._step(desired[key], containers.get(key), creating)
        self._publish()
        # Independent services are created side by side: the engine, not Python, is
        # the slow part, and it serves several requests at once.
        self._in_parallel(lambda job: self._create_and_start(*job), creating)
        self._publish()

    def _in_parallel(self, work: Callable[[T], None], items: Sequence[T]) -> None:
        if len(items) <= 1:
            for item in items:
                work(item)
            return
        for _ in self._pool.map(work, items):
            pass

    def _containers(self) -> dict[ServiceKey, ContainerInfo]:
        found: dict[ServiceKey, ContainerInfo] = {}
        for container in self._runtime.list_managed():
            if container.service is not None:
                found[(container.service.realm, container.service.service)] = container
        return found

    def _stop_unwanted(
        self,
        desired: Mapping[ServiceKey, DesiredService],
        containers: dict[ServiceKey, ContainerInfo],
    ) -> None:
        leaving = {key for key in containers.keys() | self._tracked.keys() if key not in desired}
        changed = {
            key
            for key, container in containers.items()
            if key in desired
            and container.service is not None
            and container.service.fingerprint != desired[key].fingerprint
        }
        order = stop_order(self._known_specs, leaving | changed)
        for wave in _stop_waves(order, self._known_specs):
            stopping = [(key, containers.pop(key)) for key in wave if key in containers]
            for key, _ in stopping:
                self._tracked_for(key).move(S.INSTANCE_STATE_STOPPING, "stopping its container")
            self._publish()
            self._in_parallel(self._remove, [container for _, container in stopping])
            for key in wave:
                self._after_stop(key, leaving)
        self._remove_empty_networks({realm for realm, _ in leaving}, desired)

    def _remove_empty_networks(
        self, realms: set[str], desired: Mapping[ServiceKey, DesiredService]
    ) -> None:
        """A realm whose last service left keeps no networks behind."""
        for realm in sorted(realms - {r for r, _ in desired}):
            try:
                self._runtime.remove_unused_networks(realm=realm)
            except ContainerRuntimeError as e:
                logger.warning("could not remove the networks of realm %s: %s", realm, e)

    def _after_stop(self, key: ServiceKey, leaving: set[ServiceKey]) -> None:
        tracked = self._tracked_for(key)
        if key in leaving:
            tracked.move(S.INSTANCE_STATE_STOPPED, "no longer desired")
            self._publish()
            self._store.forget_instance(*key)
            del self._tracked[key]
            self._known_specs.pop(key, None)
        else:
            tracked.move(S.INSTANCE_STATE_PENDING, "effective spec changed; recreating")
            tracked.status.restart_count = 0
            tracked.status.exited = False

    # One service ------------------------------------------------------------------

    def _step(
        self,
        desired: DesiredService,
        container: ContainerInfo | None,
        creating: list[tuple[Tracked, DesiredService]],
    ) -> None:
        tracked = self._tracked_for(desired.key)
        reapplied = tracked.status.generation != desired.generation
        self._refresh_identity(tracked, desired)
        if reapplied and tracked.state == S.INSTANCE_STATE_FAILED and container is None:
            tracked.move(S.INSTANCE_STATE_PENDING, "re-applied after failing; retrying")
            tracked.status.restart_count = 0
        if tracked.state == S.INSTANCE_STATE_FAILED:
            return
        if container is not None and container.state == ContainerState.CREATED:
            # Created, never started: an agent died between create and start.
            self._remove(container)
            container = None
        if container is None:
            self._create_when_ready(tracked, desired, creating)
        elif not container.running:
            self._handle_exit(tracked, desired, container)
        else:
            self._watch_health(tracked, desired, container)

    def _create_when_ready(
        self,
        tracked: Tracked,
        desired: DesiredService,
        creating: list[tuple[Tracked, DesiredService]],
    ) -> None:
        now = self._clock()
        if tracked.state == S.INSTANCE_STATE_RESTARTING and now < tracked.retry_at:
            return
        waiting = [
            name
            for name in desired.spec.depends_on
            if self._state_of((desired.spec.realm, name)) != S.INSTANCE_STATE_READY
        ]
        if waiting:
            tracked.move(S.INSTANCE_STATE_PENDING, f"waiting for {', '.join(waiting)} to be ready")
            return
        tracked.move(S.INSTANCE_STATE_CREATING, "creating its container")
        creating.append((tracked, desired))

    def _create_and_start(self, tracked: Tracked, desired: DesiredService) -> None:
        """Runs on a worker thread; touches only this service's own `tracked`."""
        try:
            info = self._runtime.create(
                desired.spec, fingerprint=desired.fingerprint, gpus=self._gpus(desired)
            )
            self._runtime.start(info.id)
        except EngineUnavailableError as e:
            # The engine went away, not the service: try again once it answers.
            tracked.move(S.INSTANCE_STATE_PENDING, f"container engine unavailable: {e.message}")
            return
        except ContainerRuntimeError as e:
            self._fail(tracked, f"cannot start: {e}", logs=[])
            return
        tracked.status.container_id = info.id
        self._begin_probing(tracked, desired, self._clock())
        tracked.move(S.INSTANCE_STATE_STARTING, "container started; waiting for health")

    def _handle_exit(
        self, tracked: Tracked, desired: DesiredService, container: ContainerInfo
    ) -> None:
        code = container.exit_code if container.exit_code is not None else -1
        logs = self._logs(container)
        self._remove(container)
        tracked.status.exited = True
        tracked.status.last_exit_code = code
        why = f"exited with code {code}" + (" (out of memory)" if container.oom_killed else "")
        if tracked.state in NEVER_READY:
            self._fail(tracked, f"{why} while starting", logs)
            return
        self._restart_or_fail(tracked, desired, why, logs, exit_code=code)

    def _watch_health(
        self, tracked: Tracked, desired: DesiredService, container: ContainerInfo
    ) -> None:
        now = self._clock()
        tracked.status.container_id = container.id
        if tracked.state in (S.INSTANCE_STATE_PENDING, S.INSTANCE_STATE_CREATING):
            # A running container we did not start in this life: adopted after a restart.
            self._begin_probing(tracked, desired, now)
            tracked.move(S.INSTANCE_STATE_STARTING, "adopted its running container; probing")
        if now < tracked.next_probe_at:
            return
        check = desired.spec.health_check
        interval = _seconds(check.interval) or DEFAULT_PROBE_INTERVAL_S
        retries = check.retries or DEFAULT_PROBE_RETRIES
        starting = tracked.state == S.INSTANCE_STATE_STARTING
        if starting:
            tracked.startup_probes += 1
            quick = FIRST_STARTUP_PROBE_S * 2.0 ** (tracked.startup_probes - 1)
            tracked.next_probe_at = now + min(quick, interval)
        else:
            tracked.next_probe_at = now + interval
        result = run_probe(self._runtime, container.id, check, desired.spec.connector_port)
        if result.ok:
            tracked.failures = 0
            tracked.move(S.INSTANCE_STATE_READY, "health check passed")
            return
        if starting:
            if now < tracked.count_failures_from:
                return
            tracked.count_failures_from = now + interval
            tracked.failures += 1
            if tracked.failures >= retries:
                logs = self._logs(container)
                self._remove(container)
                self._fail(tracked, f"health check never passed: {result.detail}", logs)
            return
        tracked.failures += 1
        if tracked.failures < retries:
            return
        tracked.move(S.INSTANCE_STATE_UNHEALTHY, f"health check failing: {result.detail}")
        self._publish()
        logs = self._logs(container)
        self._remove(container)
        self._restart_or_fail(tracked, desired, "unhealthy", logs, exit_code=None)

    def _begin_probing(self, tracked: Tracked, desired: DesiredService, now: float) -> None:
        check = desired.spec.health_check
        tracked.started_at = now
        tracked.next_probe_at = now
        tracked.startup_probes = 0
        tracked.count_failures_from = now + _seconds(check.start_period)
        tracked.failures = 0

    def _restart_or_fail(
        self,
        tracked: Tracked,
        desired: DesiredService,
        why: str,
        logs: list[str],
        *,
        exit_code: int | None,
    ) -> None:
        policy = desired.spec.restart_policy
        kind = policy.kind or RK.RESTART_POLICY_KIND_ON_FAILURE
        if kind == RK.RESTART_POLICY_KIND_NO or (
            kind == RK.RESTART_POLICY_KIND_ON_FAILURE and exit_code == 0
        ):
            tracked.status.last_log_lines[:] = logs
            tracked.move(S.INSTANCE_STATE_FAILED, f"{why}; its restart policy does not restart it")
            return
        if policy.max_retries and tracked.status.restart_count >= policy.max_retries:
            self._fail(tracked, f"{why}; gave up after {policy.max_retries} restarts", logs)
            return
        delay = restart_delay(tracked.status.restart_count)
        tracked.status.restart_count += 1
        tracked.retry_at = self._clock() + delay
        tracked.status.last_log_lines[:] = logs
        tracked.move(S.INSTANCE_STATE_RESTARTING, f"{why}; restarting in {delay:g} s")

    def _fail(self, tracked: Tracked, reason: str, logs: list[str]) -> None:
        tracked.status.last_log_lines[:] = logs
        tracked.move(S.INSTANCE_STATE_FAILED, reason)
        logger.warning(
            "service %s:%s failed: %s",
            tracked.status.realm,
            tracked.status.name,
            reason,
            extra={"realm": tracked.status.realm, "service": tracked.status.name},
        )

    # Helpers ----------------------------------------------------------------------

    def _tracked_for(self, key: ServiceKey) -> Tracked:
        if key not in self._tracked:
            self._tracked[key] = Tracked(
                status=S.InstanceStatus(
                    realm=key[0], name=key[1], state=S.INSTANCE_STATE_PENDING, reason="new"
                ),
                changed=True,
            )
        return self._tracked[key]

    def _state_of(self, key: ServiceKey) -> State:
        tracked = self._tracked.get(key)
        return tracked.state if tracked else S.INSTANCE_STATE_UNSPECIFIED

    def _refresh_identity(self, tracked: Tracked, desired: DesiredService) -> None:
        spec = desired.spec
        status = tracked.status
        before = status.SerializeToString(deterministic=True)
        status.variety = spec.variety
        status.profile = spec.profile
        status.fingerprint = desired.fingerprint
        status.persistent = spec.persistent
        status.generation = desired.generation
        status.gpu_uuids[:] = list(desired.gpu_uuids)
        status.endpoints[:] = [f"{p.host_ip or '127.0.0.1'}:{p.host_port}" for p in spec.portals]
        if status.SerializeToString(deterministic=True) != before:
            tracked.changed = True

    def _gpus(self, desired: DesiredService) -> GpuAssignment | None:
        if not desired.gpu_uuids:
            return None
        render_nodes: tuple[str, ...] = ()
        if desired.gpu_vendor == gpu_pb2.GPU_VENDOR_AMD:
            by_uuid = {
                device.uuid: device.render_node
                for report in self._host_profile().gpu_vendors
                for device in report.devices
            }
            render_nodes = tuple(by_uuid.get(uuid, "") for uuid in desired.gpu_uuids)
        return GpuAssignment(desired.gpu_vendor, desired.gpu_uuids, render_nodes)

    def _logs(self, container: ContainerInfo) -> list[str]:
        try:
            return self._runtime.logs(container.id, tail=LOG_LINES_KEPT)
        except ContainerRuntimeError as e:
            return [f"(logs unavailable: {e})"]

    def _remove(self, container: ContainerInfo) -> None:
        try:
            if container.running:
                self._runtime.stop(container.id, timeout_s=STOP_TIMEOUT_S)
            self._runtime.remove(container.id, force=True)
        except ContainerRuntimeError as e:
            logger.warning("could not remove container %s: %s", container.name, e)

    def _note_engine_problem(self, problem: str) -> None:
        if problem and problem != self._engine_problem:
            logger.warning("container engine unavailable: %s", problem)
        elif not problem and self._engine_problem:
            logger.info("container engine answers again")
        self._engine_problem = problem

    def _publish(self) -> None:
        for tracked in self._tracked.values():
            if tracked.changed:
                tracked.changed = False
                event = self._store.record_status(tracked.status)
                self._feed.published(event.sequence)
                if self._on_published is not None:
                    key = (tracked.status.realm, tracked.status.name)
                    self._on_published(tracked.status, self._known_specs.get(key))


def _stop_waves(
    order: Sequence[ServiceKey], specs: Mapping[ServiceKey, service_spec_pb2.ServiceSpec]
) -> list[list[ServiceKey]]:
    """`order` (dependents first) cut into waves: a service stops only after every service
    of `order` that depends on it, so each wave can stop all at once."""
    remaining = list(order)
    waves: list[list[ServiceKey]] = []
    while remaining:
        wave = [k for k in remaining if not _needed_by(k, remaining, specs)] or remaining[:1]
        waves.append(wave)
        remaining = [key for key in remaining if key not in wave]
    return waves


def _needed_by(
    key: ServiceKey,
    others: Sequence[ServiceKey],
    specs: Mapping[ServiceKey, service_spec_pb2.ServiceSpec],
) -> bool:
    return any(
        other != key and other[0] == key[0] and other in specs and key[1] in specs[other].depends_on
        for other in others
    )


def _seconds(duration: duration_pb2.Duration) -> float:
    return duration.seconds + duration.nanos / 1e9
