"""The fleet core: everything agents and operators change, on one event loop.

Agents' streams (agent_link.py) and operators' calls (fleet_service.py) land here. Each
change is made to the in-memory state (state.py) in one synchronous step, so nothing
observes it half done, and marked for the store (persistence.py). Beside the calls run
the reconciler (reconciler.py: placement, rescheduling), the health check
(health_monitor.py: TTL, grace) and the drift check (drift.py); plans and explanations
change nothing (planning.py). docs/orchestrator.md describes the behaviour users see.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import functools
import logging
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import grpc
from google.protobuf import duration_pb2
from ozwald.agent.v1 import footprint_pb2, plan_pb2, service_status_pb2
from ozwald.common.v1 import error_reason_pb2, host_profile_pb2
from ozwald.orchestrator.v1 import (
    agent_link_service_pb2,
    deployment_pb2,
    fleet_service_pb2,
    fleet_state_pb2,
    placement_pb2,
    rollout_pb2,
)

from ozwald_orchestrator.assignments import AssignmentBook
from ozwald_orchestrator.audit.kinds import ORCHESTRATOR
from ozwald_orchestrator.audit.log import AuditLog
from ozwald_orchestrator.audit.trail import AuditTrail
from ozwald_orchestrator.backoff import failure_delay
from ozwald_orchestrator.clock import Clock, SystemClock
from ozwald_orchestrator.desired_state import DELETE, DesiredChange, changed_fields, compare
from ozwald_orchestrator.drain import Drains
from ozwald_orchestrator.drift import DriftMonitor
from ozwald_orchestrator.events import EventLog
from ozwald_orchestrator.health_monitor import HealthMonitor, HealthSettings, Transition
from ozwald_orchestrator.instance_states import fleet_state_of
from ozwald_orchestrator.persistence import DEFAULT_INTERVAL_S, Persister
from ozwald_orchestrator.placement.ledger import FleetLedger, UnknownHost
from ozwald_orchestrator.placement.model import Demand
from ozwald_orchestrator.placement.registry import StrategyRegistry
from ozwald_orchestrator.placement.scheduler import Scheduler
from ozwald_orchestrator.placement.schedulers import Schedulers
from ozwald_orchestrator.placement_adapters import (
    demand_for,
    host_capacity,
    instance_spec,
)
from ozwald_orchestrator.planning import dry_run, explain_deployment, fleet_plan
from ozwald_orchestrator.reconciler import PassOutcome, Reconciler
from ozwald_orchestrator.rollouts import controller as rollout_controller
from ozwald_orchestrator.rollouts.book import ROLLOUT_FIELDS, RolloutBook
from ozwald_orchestrator.rollouts.budget import Budgets
from ozwald_orchestrator.rollouts.controller import Member, Progress
from ozwald_orchestrator.rollouts.replace import Mover
from ozwald_orchestrator.rpc_errors import OrchestratorError
from ozwald_orchestrator.scaling import scale_change
from ozwald_orchestrator.sessions import AgentSession
from ozwald_orchestrator.state import (
    DOWN,
    LOST,
    NO_GPUS,
    READY,
    FleetState,
    HostRecord,
    InstanceRecord,
)
from ozwald_orchestrator.store.protocol import DesiredVersion, FleetSnapshot, FleetStore, GpuHold
from ozwald_orchestrator.validation import validate_request
from ozwald_sdk.fingerprint import fingerprint as spec_fingerprint

logger = logging.getLogger(__name__)

PENDING = fleet_state_pb2.INSTANCE_STATE_PENDING
ASSIGNED = fleet_state_pb2.INSTANCE_STATE_ASSIGNED
RUNNING = fleet_state_pb2.INSTANCE_STATE_RUNNING
FAILED = fleet_state_pb2.INSTANCE_STATE_FAILED
HOST_DOWN = fleet_state_pb2.INSTANCE_STATE_HOST_DOWN
# Instance states that hold a place on a host (everything but pending and failed).
_PLACED = (
    ASSIGNED,
    fleet_state_pb2.INSTANCE_STATE_STARTING,
    RUNNING,
    fleet_state_pb2.INSTANCE_STATE_UNHEALTHY,
    HOST_DOWN,
)
# last_seen only informs people and tools that read the store (a restarted orchestrator
# gives every host a fresh TTL), so it is written in batches and at most this often.
LAST_SEEN_WRITE_S = 5.0
_HOST_WORDS = {READY: "ready", DOWN: "down", LOST: "lost"}
# Why a cordoned host takes no new instances, as `ozwald explain` shows it.
CORDONED = "cordoned (`ozwald uncordon HOST` lets it take new instances)"


@dataclass(frozen=True)
class FleetSettings:
    """How the fleet core behaves; the command line sets these."""

    health: HealthSettings = field(default_factory=HealthSettings)
    strategy: str = "binpack"
    # Drift younger than this is expected (an assignment on its way, a container being
    # created); older drift is corrected by sending the assignment again, at most once
    # per grace per host.
    drift_grace_s: float = 10.0
    drift_check_s: float = 1.0
    flush_interval_s: float = DEFAULT_INTERVAL_S
    # After a restart, for this long no host is lost (nothing moves), and a host whose
    # agent has not reconnected yet is not down either (health_monitor.HealthMonitor.hold).
    restart_grace_s: float = 30.0


class _Sink:
    """The reconciler's ChangeSink for the live fleet: store marks and events."""

    def __init__(self, persister: Persister, events: EventLog) -> None:
        self._persister = persister
        self._events = events

    def instance(self, instance_id: str, *, gpus: bool = False) -> None:
        self._persister.instance(instance_id, gpus=gpus)

    def instance_deleted(self, instance_id: str) -> None:
        self._persister.instance_deleted(instance_id)

    def event(
        self,
        kind: str,
        message: str,
        *,
        deployment: str = "",
        instance: str = "",
        host_id: str = "",
    ) -> None:
        self._events.record(
            kind, message, deployment=deployment, instance=instance, host_id=host_id
        )


class Fleet:
    """The orchestrator's state and every operation on it (see the module docstring)."""

    def __init__(
        self,
        store: FleetStore,
        settings: FleetSettings,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._store = store
        snapshot = store.load()
        self.state = FleetState()
        self.events = EventLog(self.clock, snapshot.last_event_sequence)
        self.persister = Persister(store, self.state, self.events)
        # Every change marked for the store is recorded in the audit log (docs/audit.md).
        self.audit = AuditTrail(audit, self.state)
        self.audit.load(snapshot)
        self.persister.observer = self.audit
        self.ledger = FleetLedger()
        self.strategy_name = settings.strategy
        # One scheduler per placement strategy in use, all on the one ledger: each
        # deployment's instances are placed by its own strategy, else by the default.
        self.schedulers = Schedulers(self.ledger, settings.strategy, StrategyRegistry.discover())
        self.scheduler = self.schedulers.default
        self.assignments = AssignmentBook(self.state, self.persister, self.events)
        self.reconciler = Reconciler(self.clock, self._rng)
        self.monitor = HealthMonitor(self.state, self.clock, settings.health)
        self._sink = _Sink(self.persister, self.events)
        # Rolling updates and drains (docs/operations.md), advanced in each reconcile pass.
        self.rollouts = RolloutBook(self.persister, self.events, self.clock)
        self.drains = Drains(self.state, self.persister, self.events, self.clock)
        self.drift_monitor = DriftMonitor(
            self.state, self.assignments, self.events, self.clock, settings.drift_grace_s
        )
        # Each heartbeat's time reaches the store in the next batch, but never more often
        # than every LAST_SEEN_WRITE_S per host however short the heartbeat interval.
        self._last_seen_write_s = min(LAST_SEEN_WRITE_S, 0.9 * settings.health.heartbeat_interval_s)
        self._wake = asyncio.Event()
        self._next_due: float | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._load(snapshot)

    # Start and restart ------------------------------------------------------------------

    def _load(self, snapshot: FleetSnapshot) -> None:
        """Resume from the store: hosts get a fresh TTL (their agents reconnect), the
        ledger gets every placed instance back on its host, nothing is placed twice."""
        state = self.state
        now = self.clock.monotonic()
        state.desired_version = snapshot.desired_version
        state.deployment_versions = dict(snapshot.deployment_versions)
        for deployment in snapshot.deployments:
            state.deployments[deployment.name] = deployment
        for footprint in snapshot.footprints:
            state.add_footprint(footprint)
        for host in snapshot.hosts:
            # Stored as connected only when the last run ended without saying goodbye.
            was_connected = host.connected
            host.connected = False
            host.address = ""
            record = HostRecord(
                host=host,
                last_seen=now,
                last_seen_wall=host.last_seen.ToDatetime(datetime.UTC),
            )
            assignment = snapshot.assignments.get(host.id)
            if assignment is not None:
                record.assignment = assignment
                record.persisted_version = assignment.version
                record.assignment_fingerprints = {
                    s.name: spec_fingerprint(s) for s in assignment.services
                }
            state.hosts[host.id] = record
            if was_connected:
                self.persister.host(host.id)
            if host.HasField("profile"):
                self.ledger.upsert_host(
                    host_capacity(host.id, host.labels, host.profile),
                    schedulable=host.state == READY,
                )
                if host.cordoned:
                    self.ledger.set_schedulable(host.id, False, CORDONED)
        for instance in snapshot.instances:
            loaded = InstanceRecord(instance=instance)
            state.add_instance(loaded)
            if instance.host_id:
                self._reserve_loaded(loaded, snapshot.instance_gpus.get(instance.id, NO_GPUS))
        self.rollouts.load(snapshot.rollouts)
        self.drains.load()
        if snapshot.hosts:
            self.monitor.hold(self.settings.restart_grace_s)
        logger.info(
            "loaded %d deployment(s), %d instance(s), %d host(s) from the store "
            "(desired-state version %d)",
            len(state.deployments),
            len(state.instances),
            len(state.hosts),
            state.desired_version,
            extra={"desired_version": state.desired_version},
        )

    def _reserve_loaded(self, record: InstanceRecord, gpus: GpuHold) -> None:
        state = self.state
        deployment = state.deployments.get(record.instance.deployment)
        host = state.hosts.get(record.host_id)
        spec = None
        if host is not None:
            # What the host was assigned is what it runs: keep exactly that.
            spec = next((s for s in host.assignment.services if s.name == record.id), None)
        if spec is None and deployment is not None:
            candidate = next(
                (c for c in deployment.candidates if c.variety == record.instance.variety), None
            )
            spec = instance_spec(candidate, record.id) if candidate is not None else None
        if spec is None or deployment is None:
            self._unplace(record, "its spec could not be recovered after a restart")
            return
        demand = demand_for(
            spec, state.footprints.get(spec_fingerprint(spec)) if state.footprints else None
        )
        if gpus.indices:
            demand = _with_vendor(demand, gpus.vendor)
        try:
            self.ledger.reserve(record.id, deployment.name, record.host_id, demand, gpus.indices)
        except (UnknownHost, ValueError) as e:
            self._unplace(record, f"its placement could not be restored ({e})")
            return
        record.spec = spec
        record.demand = demand
        record.gpus = gpus
        record.constraints_key = deployment.constraints.SerializeToString(deterministic=True)

    def start(self) -> None:
        """Start the background loops on the running event loop."""
        self._tasks = [
            asyncio.create_task(self.persister.run(self.settings.flush_interval_s), name="store"),
            asyncio.create_task(self._reconcile_loop(), name="reconciler"),
            asyncio.create_task(self._health_loop(), name="health"),
            asyncio.create_task(self._drift_loop(), name="drift"),
        ]
        self.wake()

    async def stop(self) -> None:
        """Stop the loops and write what is left."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                logger.exception("background task %s failed", task.get_name())
        self._tasks = []
        try:
            await self.persister.flush()
        finally:
            self.persister.close()

    def close_sessions(self, why: str) -> None:
        """End every agent's stream from this side (shutdown)."""
        for host in self.state.hosts.values():
            if host.session is not None:
                host.session.close(why)

    def wake(self) -> None:
        """Ask for a reconcile pass soon."""
        self._wake.set()

    # The loops --------------------------------------------------------------------------

    async def _reconcile_loop(self) -> None:
        while True:
            timeout = None
            if self._next_due is not None:
                timeout = max(0.0, self._next_due - self.clock.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            try:
                self.reconcile()
                await self.persister.flush()
            except Exception:
                logger.exception("reconcile pass failed; retrying in 1 s")
                await asyncio.sleep(1.0)
                self.wake()

    async def _health_loop(self) -> None:
        interval = self.settings.health.check_interval_s()
        while True:
            await asyncio.sleep(interval)
            # A bug must not end failure detection for the rest of the process's life.
            try:
                self.check_health()
            except Exception:
                logger.exception("health check failed; checking again in %.2f s", interval)

    async def _drift_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.drift_check_s)
            try:
                self.correct_drift()
            except Exception:
                logger.exception("drift check failed; checking again")

    # Reconciling ------------------------------------------------------------------------

    def reconcile(self) -> PassOutcome:
        """One pass now; rebuilds the assignments of the hosts it changed."""
        with self.audit.acting(ORCHESTRATOR):
            outcome = self.reconciler.run(
                self.state, self.ledger, self.scheduler, self._sink, choose=self.scheduler_for
            )
            touched = set(outcome.touched_hosts)
            released, disruption_due = self._disrupt(touched)
            if released:
                # Replaced or drained instances that must go elsewhere: place them now.
                again = self.reconciler.run(
                    self.state, self.ledger, self.scheduler, self._sink, choose=self.scheduler_for
                )
                touched |= again.touched_hosts
                outcome.placed.update(again.placed)
                outcome.unplaced.update(again.unplaced)
                if again.next_due is not None:
                    outcome.due_at(again.next_due)
            for host_id in sorted(touched):
                self.assignments.rebuild(host_id)
        if disruption_due is not None:
            outcome.due_at(disruption_due)
        self._next_due = outcome.next_due
        return outcome

    def _disrupt(self, touched: set[str]) -> tuple[int, float | None]:
        """Advance rollouts and drains: both take instances down within one shared
        disruption budget per deployment. Returns how many instances were released to be
        placed elsewhere, and when (monotonic) a rollout or drain timer is next due."""
        active = self.rollouts.active_names()
        if not active and not self.drains.any_running():
            return 0, None
        budgets = Budgets(self.state)
        mover = Mover(
            self.state, self.ledger, self.scheduler, self.clock.now(), choose=self.scheduler_for
        )
        released = 0
        due: datetime.datetime | None = None
        for name in active:
            progress = self.rollouts.active(name)
            deployment = self.state.deployments.get(name)
            if progress is None:
                continue
            if deployment is None:
                self.rollouts.removed(name)
                continue
            step = self.rollouts.advance(
                progress, self._members(deployment), budgets.of(deployment), deployment.version
            )
            for instance_id in step.replace:
                record = self.state.instances[instance_id]
                old_host, new_host = mover.replace(record, deployment)
                self.persister.instance(instance_id, gpus=True)
                touched.add(old_host)
                if new_host:
                    touched.add(new_host)
                else:
                    released += 1
            if step.failed:
                self._rollout_failed(progress, deployment)
            if step.next_due is not None:
                due = step.next_due if due is None else min(due, step.next_due)
        drained = self.drains.step(budgets, mover)
        touched |= drained.touched_hosts
        released += drained.released
        if drained.next_due is not None:
            due = drained.next_due if due is None else min(due, drained.next_due)
        if due is None:
            return released, None
        wait = max(0.0, (due - self.clock.now()).total_seconds())
        return released, self.clock.monotonic() + wait

    def _members(self, deployment: deployment_pb2.Deployment) -> list[Member]:
        members = []
        hosts = self.state.hosts
        for record in self.state.instances_of(deployment.name):
            instance = record.instance
            up = instance.state == RUNNING
            host = hosts.get(record.host_id) if record.host_id else None
            members.append(
                Member(
                    id=record.id,
                    ordinal=instance.ordinal,
                    updated=instance.deployment_version == deployment.version,
                    available=up,
                    running_since=instance.state_since.ToDatetime(datetime.UTC) if up else None,
                    host_down=host is not None and host.host.state == DOWN,
                )
            )
        return members

    def _rollout_failed(self, progress: Progress, deployment: deployment_pb2.Deployment) -> None:
        """auto_revert: store the last fully rolled-out version's spec as a new version
        and roll it out. A revert that fails itself is not reverted again."""
        rollout = progress.rollout
        stable = progress.stable
        if not progress.strategy.auto_revert:
            return
        if rollout.is_revert or stable is None:
            why = (
                "it was itself a revert"
                if rollout.is_revert
                else "the deployment never ran completely on one version before"
            )
            rollout.reason += f"; not reverted: {why}"
            self.rollouts.touch(progress)
            return
        reverted = self._store_version(
            deployment,
            stable,
            f"revert {deployment.name} to version {stable.version}",
        )
        self.rollouts.end(
            progress,
            rollout_controller.REVERTED,
            f"{rollout.reason}; reverted to version {stable.version}'s spec as version "
            f"{reverted.version}",
            "rollout-reverted",
        )
        self.rollouts.begin(
            deployment,
            reverted,
            is_revert=True,
            reason=f"reverting to version {stable.version}'s spec after rollout {rollout.id} "
            "failed",
        )
        self.wake()

    def _store_version(
        self,
        current: deployment_pb2.Deployment,
        source: deployment_pb2.Deployment,
        summary: str,
    ) -> deployment_pb2.Deployment:
        """A new version of `current` running `source`'s spec (candidates, constraints,
        strategies) with the current replica count, stored as a desired-state change."""
        state = self.state
        now = self.clock.now()
        new = deployment_pb2.Deployment()
        new.CopyFrom(source)
        new.replicas = current.replicas
        new.version = max(state.deployment_versions.get(current.name, 0), current.version) + 1
        new.updated_at.FromDatetime(now)
        state.desired_version += 1
        state.deployments[current.name] = new
        state.deployment_versions[current.name] = new.version
        self.persister.desired(DesiredVersion(state.desired_version, now, summary), [new], [])
        self.events.record(
            "deployment-applied",
            f"{current.name} updated ({summary}): version {new.version}, {new.replicas} "
            f"replica(s) (desired-state version {state.desired_version})",
            deployment=current.name,
        )
        return new

    def scheduler_for(self, deployment: deployment_pb2.Deployment) -> Scheduler:
        """The scheduler of the deployment's placement strategy (the default's when it
        names none, or names one this orchestrator cannot load)."""
        return self.schedulers.for_deployment(deployment.strategy)

    def check_health(self) -> None:
        """Move the hosts whose silence passed the TTL or the grace."""
        with self.audit.acting(ORCHESTRATOR):
            for transition in self.monitor.due():
                self._transition(transition)

    # Hosts: agents' streams -------------------------------------------------------------

    def connect(
        self, session: AgentSession, register: agent_link_service_pb2.Register
    ) -> HostRecord:
        """An agent opened a stream: (re)join it, answer Registered, send what it lacks."""
        host_id = register.host_id
        now, wall = self.clock.monotonic(), self.clock.now()
        record = self.state.hosts.get(host_id)
        joined = record is None
        if record is None:
            host = fleet_state_pb2.Host(id=host_id, state=READY)
            host.joined_at.FromDatetime(wall)
            host.state_since.FromDatetime(wall)
            record = HostRecord(host=host, last_seen=now, last_seen_wall=wall)
            self.state.hosts[host_id] = record
        previous = record.session
        if previous is not None and previous is not session:
            previous.close("replaced by a newer stream from the same host")
        record.session = session
        record.sent_version = 0
        # Registered goes first, before any assignment this connect may send.
        session.send(
            agent_link_service_pb2.ConnectResponse(
                registered=agent_link_service_pb2.Registered(
                    heartbeat_interval=_duration(self.settings.health.heartbeat_interval_s),
                    heartbeat_ttl=_duration(self.settings.health.heartbeat_ttl_s),
                    session_id=session.session_id,
                )
            )
        )
        record.last_seen, record.last_seen_wall = now, wall
        self.monitor.heard(host_id)
        host = record.host
        host.labels.clear()
        host.labels.update(register.labels)
        host.profile.CopyFrom(register.profile)
        host.address = session.peer
        host.connected = True
        host.applied_assignment_version = register.applied_assignment_version
        if joined:
            self.events.record("host-joined", f"{host_id} joined the fleet", host_id=host_id)
        else:
            self.events.record(
                "host-connected", f"{host_id} connected from {session.peer}", host_id=host_id
            )
        self.ledger.upsert_host(host_capacity(host_id, host.labels, host.profile), schedulable=True)
        if host.cordoned:
            self.ledger.set_schedulable(host_id, False, CORDONED)
        self.reconciler.capacity_changed()
        if host.state != READY:
            self._ready(record, "its agent connected again")
        self.observe(record, register.instances, (), complete=True)
        self.footprints_reported(register.footprints)
        self.persister.host(host_id)
        applied = register.applied_assignment_version
        if applied > record.assignment.version:
            self.assignments.move_past(record, applied)
        elif applied == record.assignment.version:
            record.sent_version = applied
        self.assignments.send(record)
        self.wake()
        return record

    def seen(self, record: HostRecord) -> None:
        """Any message from the agent: it is alive. O(1) unless it was down."""
        now = self.clock.monotonic()
        record.last_seen = now
        record.last_seen_wall = self.clock.now()
        self.monitor.heard(record.id)
        if now - record.last_seen_marked >= self._last_seen_write_s:
            record.last_seen_marked = now
            self.persister.host_seen(record.id)
        if record.host.state != READY:
            self._ready(record, "its agent speaks again")

    def disconnected(self, session: AgentSession, why: str) -> None:
        record = self.state.hosts.get(session.host_id)
        if record is None or record.session is not session:
            return
        record.session = None
        record.sent_version = 0
        record.host.connected = False
        record.host.address = ""
        self.persister.host(record.id)
        self.events.record(
            "host-disconnected", f"{record.id} disconnected: {why}", host_id=record.id
        )

    def profile_reported(self, record: HostRecord, profile: host_profile_pb2.HostProfile) -> None:
        record.host.profile.CopyFrom(profile)
        self.ledger.upsert_host(
            host_capacity(record.id, record.host.labels, profile),
            schedulable=record.host.state == READY and not record.host.cordoned,
        )
        self.reconciler.capacity_changed()
        self.persister.host(record.id)
        self.wake()

    def footprints_reported(self, footprints: Iterable[footprint_pb2.Footprint]) -> None:
        kept = [f for f in footprints if f.fingerprint and self.state.add_footprint(f)]
        if kept:
            self.persister.footprints(kept)

    def observe(
        self,
        record: HostRecord,
        statuses: Sequence[service_status_pb2.InstanceStatus],
        removed: Sequence[str],
        *,
        complete: bool = False,
    ) -> None:
        """What the agent reports of its fleet instances: `complete` replaces the whole
        picture (Register), otherwise these statuses change it (InstanceReport)."""
        record.observed_revision += 1
        if complete:
            record.observed = {s.name: s for s in statuses}
        else:
            for name in removed:
                record.observed.pop(name, None)
            for status in statuses:
                record.observed[status.name] = status
        for status in statuses:
            instance = self.state.instances.get(status.name)
            if instance is None or instance.host_id != record.id:
                continue  # not assigned there: drift reports it as unexpected
            self._status(record, instance, status)

    def _status(
        self,
        host: HostRecord,
        record: InstanceRecord,
        status: service_status_pb2.InstanceStatus,
    ) -> None:
        instance = record.instance
        instance.agent_status.CopyFrom(status)
        self.persister.instance(record.id)
        target = fleet_state_of(status.state)
        if target is None:
            return
        if status.fingerprint and record.spec is not None:
            expected = host.assignment_fingerprints.get(record.id)
            admitted = (
                host.admitted_fingerprints.get(record.id)
                if host.admitted_version == host.assignment.version
                else None
            )
            if status.fingerprint not in (expected, admitted):
                # A status of the spec it ran before: says nothing about the current one.
                return
        if target == FAILED:
            self.fail(record, f"the agent on {host.id} gave up on it: {status.reason}")
            return
        if host.host.state != READY:
            return
        if target == RUNNING:
            record.failures = 0
            record.avoid_hosts.clear()
        if instance.state != target:
            self._set_instance_state(record, target, status.reason)
            if self.rollouts.active(instance.deployment) is not None or self.drains.any_running():
                self.wake()  # a rollout or drain waits on instances changing state
            self.events.record(
                "instance-state",
                f"{record.id} on {host.id}: {_instance_word(target)}"
                + (f" ({status.reason})" if status.reason else ""),
                deployment=instance.deployment,
                instance=record.id,
                host_id=host.id,
            )
        else:
            instance.reason = status.reason

    def assignment_result(
        self, record: HostRecord, result: agent_link_service_pb2.AssignmentResult
    ) -> None:
        host = record.host
        if result.version != record.assignment.version:
            if result.admitted:
                host.applied_assignment_version = result.version
                self.persister.host(record.id)
            logger.info(
                "%s answered assignment v%d, current is v%d: ignored",
                record.id,
                result.version,
                record.assignment.version,
                extra={"host_id": record.id},
            )
            return
        if result.admitted:
            host.applied_assignment_version = result.version
            if result.HasField("plan") or record.admitted_version != result.version:
                # An agent that had already applied this version answers without a plan:
                # what it admitted then still holds.
                record.admitted_fingerprints = {
                    a.name: a.fingerprint
                    for a in result.plan.actions
                    if a.kind != plan_pb2.ACTION_KIND_STOP and a.fingerprint
                }
            record.admitted_version = result.version
            self.persister.host(record.id)
            return
        refusals = list(result.plan.refusals)
        words = "; ".join(f"{r.name}: {r.message}" for r in refusals) or result.error
        self.events.record(
            "assignment-refused",
            f"{record.id} refused assignment v{result.version}: {words}",
            host_id=record.id,
        )
        for refusal in refusals:
            instance = self.state.instances.get(refusal.name)
            if instance is not None and instance.host_id == record.id:
                self.fail(instance, f"{record.id} refused it: {refusal.message}")

    # Host state changes -----------------------------------------------------------------

    def _transition(self, transition: Transition) -> None:
        if transition.to == DOWN:
            self._down(transition.host, transition.why)
        elif transition.to == LOST:
            self._lost(transition.host, transition.why)

    def _set_host_state(
        self, record: HostRecord, to: fleet_state_pb2.HostState.ValueType, kind: str, why: str
    ) -> None:
        record.host.state = to
        record.host.state_since.FromDatetime(self.clock.now())
        self.persister.host(record.id)
        self.events.record(kind, f"{record.id} is {_HOST_WORDS[to]}: {why}", host_id=record.id)

    def _ready(self, record: HostRecord, why: str) -> None:
        was_lost = record.host.state == LOST
        self._set_host_state(record, READY, "host-ready", why)
        if record.id in self.ledger.host_ids():
            self.ledger.set_schedulable(record.id, not record.host.cordoned, CORDONED)
        self.reconciler.capacity_changed()
        for instance in list(self.state.instances_on(record.id)):
            if instance.instance.state == HOST_DOWN:
                observed = record.observed.get(instance.id)
                target = fleet_state_of(observed.state) if observed is not None else None
                self._set_instance_state(
                    instance,
                    target if target is not None and target != FAILED else ASSIGNED,
                    f"{record.id} is back",
                )
        if was_lost:
            self.assignments.send(record)
        self.wake()

    def _down(self, record: HostRecord, why: str) -> None:
        self._set_host_state(record, DOWN, "host-down", why)
        if record.id in self.ledger.host_ids():
            self.ledger.set_schedulable(record.id, False, "host down")
        grace = self.settings.health.reschedule_grace_s
        for instance in self.state.instances_on(record.id):
            if instance.instance.state in _PLACED:
                self._set_instance_state(
                    instance,
                    HOST_DOWN,
                    f"{record.id} is down; placed elsewhere if it is not back within {grace:g} s",
                )

    def _lost(self, record: HostRecord, why: str) -> None:
        self._set_host_state(record, LOST, "host-lost", why)
        if record.id in self.ledger.host_ids():
            self.ledger.set_schedulable(record.id, False, "host lost")
        for instance in list(self.state.instances_on(record.id)):
            self._unplace(instance, f"{record.id} was lost; placing it elsewhere")
            instance.rescheduling = True
        self.assignments.rebuild(record.id)
        self.wake()

    # Cordon -----------------------------------------------------------------------------

    def host_record(self, host_id: str) -> HostRecord:
        """The host called `host_id`; NOT_FOUND (HOST_NOT_FOUND) when none joined."""
        record = self.state.hosts.get(host_id)
        if record is None:
            known = ", ".join(sorted(self.state.hosts)[:10]) or "none"
            raise OrchestratorError(
                grpc.StatusCode.NOT_FOUND,
                error_reason_pb2.ERROR_REASON_HOST_NOT_FOUND,
                f"no host {host_id!r} in the fleet (hosts: {known})",
                "check the host id with `ozwald hosts`",
                host_id=host_id,
            )
        return record

    def set_cordoned(self, record: HostRecord, cordoned: bool, why: str) -> bool:
        """Cordon or uncordon a host; False when it already was. A cordoned host takes no
        new instances (the ledger's schedulable is READY and not cordoned); what runs
        there stays. Drain cordons through here too."""
        host = record.host
        if host.cordoned == cordoned:
            return False
        host.cordoned = cordoned
        self.persister.host(record.id)
        if record.id in self.ledger.host_ids():
            if cordoned:
                self.ledger.set_schedulable(record.id, False, CORDONED)
            elif host.state == READY:
                self.ledger.set_schedulable(record.id, True)
        self.reconciler.capacity_changed()
        running = sum(1 for _ in self.state.instances_on(record.id))
        if cordoned:
            message = (
                f"{record.id} is cordoned ({why}): it takes no new instances "
                f"(it runs {running} now)"
            )
        else:
            message = f"{record.id} is uncordoned ({why}): it takes new instances again"
        self.events.record(
            "host-cordoned" if cordoned else "host-uncordoned", message, host_id=record.id
        )
        self.wake()
        return True

    async def cordon(self, host_id: str) -> fleet_state_pb2.Host:
        record = self.host_record(host_id)
        self.set_cordoned(record, True, "by an operator")
        await self.persister.flush()
        return record.snapshot()

    async def uncordon(self, host_id: str) -> fleet_state_pb2.Host:
        """Uncordon a host and cancel its drain, if one runs."""
        record = self.host_record(host_id)
        self.cancel_drain(host_id)
        self.set_cordoned(record, False, "by an operator")
        await self.persister.flush()
        return record.snapshot()

    # Instances --------------------------------------------------------------------------

    def _unplace(self, record: InstanceRecord, reason: str) -> None:
        """Take an instance off its host (releasing its reservation); it waits to be
        placed again."""
        self.ledger.release(record.id)
        self.state.move_instance(record, "")
        record.spec = None
        record.demand = None
        record.gpus = NO_GPUS
        record.instance.ClearField("agent_status")
        self._set_instance_state(record, PENDING, reason)
        self.persister.instance(record.id, gpus=True)

    def fail(self, record: InstanceRecord, reason: str) -> None:
        """The instance failed or was refused on its host: place it again elsewhere,
        after a backoff that grows with each failure in a row."""
        host_id = record.host_id
        self._unplace(record, reason)
        record.failures += 1
        record.rescheduling = True
        if host_id:
            record.avoid_hosts.add(host_id)
        delay = failure_delay(record.failures, self._rng)
        record.next_attempt = self.clock.monotonic() + delay
        self._set_instance_state(record, FAILED, f"{reason}; placing it again in {delay:.0f} s")
        self.events.record(
            "instance-state",
            f"{record.id} failed: {reason}; placing it again in {delay:.1f} s",
            deployment=record.instance.deployment,
            instance=record.id,
            host_id=host_id,
        )
        if host_id:
            self.assignments.rebuild(host_id)
        self._next_due = (
            record.next_attempt
            if self._next_due is None
            else min(self._next_due, record.next_attempt)
        )
        self.wake()

    def _set_instance_state(
        self, record: InstanceRecord, to: fleet_state_pb2.InstanceState.ValueType, reason: str
    ) -> None:
        instance = record.instance
        if instance.state != to:
            instance.state_since.FromDatetime(self.clock.now())
        instance.state = to
        instance.reason = reason
        self.persister.instance(record.id)

    # Drift ------------------------------------------------------------------------------

    def drift(self) -> list[fleet_service_pb2.DriftItem]:
        return self.drift_monitor.items()

    def correct_drift(self) -> None:
        with self.audit.acting(ORCHESTRATOR):
            self.drift_monitor.correct()

    # Desired state: operators -----------------------------------------------------------

    def plan(
        self, deployments: Sequence[deployment_pb2.Deployment], realms: Sequence[str]
    ) -> fleet_service_pb2.PlanDeploymentsResponse:
        validate_request(deployments, realms, strategy_problem=self.schedulers.problem)
        change = compare(
            self.state.deployments,
            self.state.deployment_versions,
            deployments,
            realms,
            self.clock.now(),
        )
        outcome = dry_run(
            self.state, change, self.ledger, self.scheduler, self.clock, choose=self.scheduler_for
        )
        return fleet_service_pb2.PlanDeploymentsResponse(
            plan=fleet_plan(change, outcome, self.state.desired_version)
        )

    async def apply(
        self, deployments: Sequence[deployment_pb2.Deployment], realms: Sequence[str]
    ) -> fleet_service_pb2.ApplyDeploymentsResponse:
        validate_request(deployments, realms, strategy_problem=self.schedulers.problem)
        now = self.clock.now()
        change = compare(
            self.state.deployments, self.state.deployment_versions, deployments, realms, now
        )
        before = self.events.last_sequence
        if change.changed:
            self._store_change(change, now)
            self.reconcile()
        await self.persister.flush()
        return fleet_service_pb2.ApplyDeploymentsResponse(
            plan=fleet_plan(change, self.state, self.state.desired_version),
            event_sequence=before,
        )

    async def scale(self, name: str, replicas: int) -> fleet_service_pb2.ScaleDeploymentResponse:
        """A new version of deployment `name` with `replicas` instances and nothing else
        changed (scaling.py); nothing is stored when it has that many already."""
        stored = self.deployment(name)
        now = self.clock.now()
        change = scale_change(
            self.state.deployments, self.state.deployment_versions, name, replicas, now
        )
        if change.changed:
            state = self.state
            scaled = change.upserts[0]
            state.desired_version += 1
            state.deployments = change.deployments
            state.deployment_versions[name] = scaled.version
            self.persister.desired(
                DesiredVersion(
                    state.desired_version, now, f"scale {name} {stored.replicas} -> {replicas}"
                ),
                [scaled],
                [],
            )
            self.events.record(
                "deployment-scaled",
                f"{name} scaled from {stored.replicas} to {replicas} replica(s): version "
                f"{scaled.version} (desired-state version {state.desired_version})",
                deployment=name,
            )
            self.reconcile()
        await self.persister.flush()
        return fleet_service_pb2.ScaleDeploymentResponse(
            deployment=self.state.deployments[name],
            plan=fleet_plan(change, self.state, self.state.desired_version),
        )

    def _store_change(self, change: DesiredChange, now: datetime.datetime) -> None:
        state = self.state
        before = state.deployments
        state.desired_version += 1
        state.deployments = change.deployments
        for deployment in change.upserts:
            state.deployment_versions[deployment.name] = deployment.version
        for removed in change.removed:
            state.deployment_versions[removed.name] = removed.version
        self.persister.desired(
            DesiredVersion(state.desired_version, now, change.summary()),
            list(change.upserts),
            list(change.removed),
        )
        for c in change.changes:
            if c.kind == DELETE:
                self.events.record(
                    "deployment-removed",
                    f"{c.deployment} removed (desired-state version {state.desired_version})",
                    deployment=c.deployment,
                )
            elif c.kind in (
                placement_pb2.DEPLOYMENT_CHANGE_KIND_CREATE,
                placement_pb2.DEPLOYMENT_CHANGE_KIND_UPDATE,
            ):
                deployment = state.deployments[c.deployment]
                what = (
                    "created"
                    if c.kind == placement_pb2.DEPLOYMENT_CHANGE_KIND_CREATE
                    else f"updated ({', '.join(c.changed_fields)})"
                )
                self.events.record(
                    "deployment-applied",
                    f"{c.deployment} {what}: version {deployment.version}, "
                    f"{deployment.replicas} replica(s) (desired-state version "
                    f"{state.desired_version})",
                    deployment=c.deployment,
                )
                old = before.get(c.deployment)
                if old is not None and ROLLOUT_FIELDS.intersection(c.changed_fields):
                    self.rollouts.begin(old, deployment)
        for removed in change.removed:
            self.rollouts.removed(removed.name)

    # Rollouts and drains: operators -----------------------------------------------------

    def rollout(self, name: str) -> rollout_pb2.Rollout:
        """The deployment's current or latest rollout."""
        self.deployment(name)
        return self.rollouts.get(name).rollout

    async def pause_rollout(self, name: str) -> rollout_pb2.Rollout:
        self.deployment(name)
        progress = self.rollouts.pause(name)
        await self.persister.flush()
        return progress.rollout

    async def resume_rollout(self, name: str) -> rollout_pb2.Rollout:
        self.deployment(name)
        progress = self.rollouts.resume(name)
        self.reconcile()
        await self.persister.flush()
        return progress.rollout

    async def promote_rollout(self, name: str) -> rollout_pb2.Rollout:
        self.deployment(name)
        progress = self.rollouts.promote(name)
        self.reconcile()
        await self.persister.flush()
        return progress.rollout

    async def undo_rollout(
        self, name: str, to_version: int
    ) -> fleet_service_pb2.UndoRolloutResponse:
        """A new version of the deployment with an earlier version's spec, rolled out;
        `to_version` 0 is the version the latest rollout replaced."""
        current = self.deployment(name)
        if to_version == 0:
            to_version = self.rollouts.get(name).rollout.from_version
        history = await self.persister.run_in_writer(
            functools.partial(self._store.deployment_history, name)
        )
        target = next(
            (r.deployment for r in history if r.deployment.version == to_version and not r.deleted),
            None,
        )
        if target is None:
            stored = ", ".join(str(r.deployment.version) for r in history if not r.deleted)
            raise OrchestratorError(
                grpc.StatusCode.NOT_FOUND,
                error_reason_pb2.ERROR_REASON_DEPLOYMENT_NOT_FOUND,
                f"deployment {name!r} has no stored version {to_version} (versions: "
                f"{stored or 'none'})",
                "name a stored version with --to-version, or leave it out to undo the "
                "latest rollout",
                deployment=name,
            )
        current = self.deployment(name)  # the store read let other calls run
        if not ROLLOUT_FIELDS.intersection(changed_fields(current, target)):
            latest = self.rollouts.latest(name)
            return fleet_service_pb2.UndoRolloutResponse(
                deployment=current, rollout=latest.rollout if latest is not None else None
            )
        new = self._store_version(current, target, f"undo {name} to version {to_version}")
        progress = self.rollouts.begin(
            current, new, is_revert=True, reason=f"undo to version {to_version}'s spec"
        )
        self.reconcile()
        await self.persister.flush()
        return fleet_service_pb2.UndoRolloutResponse(deployment=new, rollout=progress.rollout)

    async def drain(self, host_id: str, deadline_s: float) -> fleet_state_pb2.Host:
        """Cordon the host and move its instances elsewhere (drain.py)."""
        record = self.host_record(host_id)
        self.set_cordoned(record, True, "draining")
        self.drains.start(record, deadline_s)
        self.reconcile()
        await self.persister.flush()
        return record.snapshot()

    def cancel_drain(self, host_id: str) -> bool:
        """End the host's running drain (uncordon calls this); False when none runs."""
        return self.drains.cancel(host_id)

    # Reading ----------------------------------------------------------------------------

    def deployment(self, name: str) -> deployment_pb2.Deployment:
        deployment = self.state.deployments.get(name)
        if deployment is None:
            known = ", ".join(sorted(self.state.deployments)[:10]) or "none"
            raise OrchestratorError(
                grpc.StatusCode.NOT_FOUND,
                error_reason_pb2.ERROR_REASON_DEPLOYMENT_NOT_FOUND,
                f"no deployment named {name!r} (deployments: {known})",
                "check the name with `ozwald deployments`",
                deployment=name,
            )
        return deployment

    def instances(self, deployment: str = "", host_id: str = "") -> list[fleet_state_pb2.Instance]:
        if deployment:
            records: Iterable[InstanceRecord] = self.state.instances_of(deployment)
        elif host_id:
            records = self.state.instances_on(host_id)
        else:
            records = (self.state.instances[i] for i in sorted(self.state.instances))
        return [r.instance for r in records if not host_id or r.host_id == host_id]

    async def read_events(self, after: int, limit: int) -> list[fleet_state_pb2.FleetEvent]:
        """Stored events after `after`, read on the store's thread."""
        return await self.persister.run_in_writer(
            functools.partial(self._store.read_events, after, limit)
        )

    def hosts(self) -> list[fleet_state_pb2.Host]:
        return [self.state.hosts[h].snapshot() for h in sorted(self.state.hosts)]

    async def explain(self, name: str) -> fleet_service_pb2.ExplainDeploymentResponse:
        deployment = self.deployment(name)
        scheduler = self.scheduler_for(deployment)
        return await explain_deployment(self.state, deployment, scheduler, scheduler.strategy.name)


def _with_vendor(demand: Demand, vendor: int) -> Demand:
    return dataclasses.replace(demand, gpu_vendor=vendor)


def _duration(seconds: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromTimedelta(datetime.timedelta(seconds=seconds))
    return duration


def _instance_word(state: fleet_state_pb2.InstanceState.ValueType) -> str:
    return fleet_state_pb2.InstanceState.Name(state).removeprefix("INSTANCE_STATE_").lower()
