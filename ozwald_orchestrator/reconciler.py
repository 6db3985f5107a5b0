"""Turns deployments into instances and instances into placements.

One pass: instances of removed deployments go; each deployment gets exactly `replicas`
instances by ordinal (scaling down removes the highest ordinals); instances whose
deployment changed take the new version when what they run is unchanged (those whose
spec changed wait for the rollout, rollouts/); then every instance without a host
whose backoff has passed is placed, in deployment and ordinal order. The pass reports
the hosts whose set of instances changed; the caller rebuilds their assignments.

The pass runs synchronously on the event loop, so nothing else sees the fleet half
reconciled. The same code plans a dry run: on copies of the instances and the ledger.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ozwald.common.v1 import service_spec_pb2
from ozwald.orchestrator.v1 import deployment_pb2, fleet_state_pb2

from ozwald_orchestrator.backoff import failure_delay
from ozwald_orchestrator.clock import Clock
from ozwald_orchestrator.placement.host_state import Reservation
from ozwald_orchestrator.placement.ledger import FleetLedger
from ozwald_orchestrator.placement.model import Demand, Placement, PlacementRequest, Unplaced
from ozwald_orchestrator.placement.scheduler import Scheduler
from ozwald_orchestrator.placement_adapters import candidate_demands, placement_request
from ozwald_orchestrator.state import FleetState, InstanceRecord
from ozwald_orchestrator.store.protocol import GpuHold

logger = logging.getLogger(__name__)

PENDING = fleet_state_pb2.INSTANCE_STATE_PENDING
ASSIGNED = fleet_state_pb2.INSTANCE_STATE_ASSIGNED
# An instance no host can take is tried again on every pass (passes run when capacity
# changes) and, at the latest, after this long.
UNPLACED_RETRY_S = 10.0

Options = tuple[tuple[service_spec_pb2.ServiceSpec, Demand], ...]


class ChangeSink(Protocol):
    """Where a pass writes down what it changed: the store's marks and the event log."""

    def instance(self, instance_id: str, *, gpus: bool = False) -> None: ...

    def instance_deleted(self, instance_id: str) -> None: ...

    def event(
        self,
        kind: str,
        message: str,
        *,
        deployment: str = "",
        instance: str = "",
        host_id: str = "",
    ) -> None: ...


@dataclass
class PassOutcome:
    """What one pass did."""

    # Hosts whose set of instances (or their specs) changed.
    touched_hosts: set[str] = field(default_factory=set)
    # instance id -> (host id, variety) for instances placed in this pass.
    placed: dict[str, tuple[str, str]] = field(default_factory=dict)
    # instance id -> why no host could take it.
    unplaced: dict[str, str] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    # When the next instance waiting on a backoff is due (monotonic), if any.
    next_due: float | None = None

    def due_at(self, moment: float) -> None:
        self.next_due = moment if self.next_due is None else min(self.next_due, moment)


@dataclass
class _Pass:
    """What one pass works on."""

    state: FleetState
    ledger: FleetLedger
    scheduler: Scheduler
    sink: ChangeSink
    now: float
    ignore_backoff: bool
    outcome: PassOutcome = field(default_factory=PassOutcome)
    # Why instances could not be placed in this pass, by what they ask for: (the instance
    # explained, its summary).
    reasons: dict[tuple[str, int, tuple[Demand, ...]], tuple[str, str]] = field(
        default_factory=dict
    )
    # For a dry run: each instance's reservation before the pass first touched it.
    journal: dict[str, Reservation | None] | None = None
    # The scheduler of a deployment's own placement strategy (all share the ledger);
    # None places everything with `scheduler`.
    choose: Callable[[deployment_pb2.Deployment], Scheduler] | None = None

    def touch(self, instance_id: str) -> None:
        if self.journal is not None and instance_id not in self.journal:
            self.journal[instance_id] = self.ledger.reservation(instance_id)

    def scheduler_for(self, deployment: deployment_pb2.Deployment) -> Scheduler:
        return self.scheduler if self.choose is None else self.choose(deployment)


class Reconciler:
    """Runs passes over a FleetState with a scheduler bound to its ledger."""

    def __init__(self, clock: Clock, rng: random.Random | None = None) -> None:
        self._clock = clock
        self._rng = rng or random.Random()
        # Pending instances whose reason was worked out; a retry only asks "fits now?".
        self._explained: set[str] = set()

    def capacity_changed(self) -> None:
        """Hosts came, went or changed: reasons worked out before may no longer hold."""
        self._explained.clear()

    def run(
        self,
        state: FleetState,
        ledger: FleetLedger,
        scheduler: Scheduler,
        sink: ChangeSink,
        *,
        place_all_pending: bool = False,
        journal: dict[str, Reservation | None] | None = None,
        choose: Callable[[deployment_pb2.Deployment], Scheduler] | None = None,
    ) -> PassOutcome:
        """One pass. `place_all_pending` ignores backoffs (a dry run shows where every
        instance would go); `journal` collects what the ledger held before, so that a dry
        run on the live ledger can be undone (`undo`); `choose` gives each deployment the
        scheduler of its own strategy (`scheduler` places everything without it)."""
        run = _Pass(
            state,
            ledger,
            scheduler,
            sink,
            self._clock.monotonic(),
            place_all_pending,
            journal=journal,
            choose=choose,
        )
        for name in state.deployment_names_with_instances():
            if name not in state.deployments:
                for record in state.instances_of(name):
                    self._remove(run, record, "its deployment was removed")
        for name in sorted(state.deployments):
            self._shape(run, state.deployments[name])
        self._place(run)
        return run.outcome

    def _shape(self, run: _Pass, deployment: deployment_pb2.Deployment) -> None:
        existing = {r.instance.ordinal: r for r in run.state.instances_of(deployment.name)}
        for ordinal in sorted(existing, reverse=True):
            if ordinal >= deployment.replicas:
                self._remove(
                    run,
                    existing.pop(ordinal),
                    f"deployment scaled to {deployment.replicas} replica(s)",
                )
        for ordinal in range(deployment.replicas):
            record = existing.get(ordinal)
            if record is None:
                instance = fleet_state_pb2.Instance(
                    id=f"{deployment.name}-{ordinal}",
                    deployment=deployment.name,
                    ordinal=ordinal,
                    deployment_version=deployment.version,
                    state=PENDING,
                    reason="waiting to be placed",
                )
                instance.state_since.FromDatetime(self._clock.now())
                run.state.add_instance(InstanceRecord(instance=instance))
                run.sink.instance(instance.id)
            elif record.instance.deployment_version != deployment.version:
                self._follow(run, record, deployment)

    def _follow(
        self, run: _Pass, record: InstanceRecord, deployment: deployment_pb2.Deployment
    ) -> None:
        """A deployment changed: an instance that is not placed, or whose spec and
        constraints did not change, takes the new version where it is. One whose spec
        changed keeps running the old version until its deployment's rollout replaces it
        (rollouts/), a few at a time."""
        if record.host_id and record.spec is not None:
            same = next(
                (
                    spec
                    for spec, _ in candidate_demands(deployment, record.id, run.state.footprints)
                    if spec.variety == record.instance.variety
                ),
                None,
            )
            constraints = deployment.constraints.SerializeToString(deterministic=True)
            if same != record.spec or constraints != record.constraints_key:
                return
        record.instance.deployment_version = deployment.version
        run.sink.instance(record.id)

    def _remove(self, run: _Pass, record: InstanceRecord, why: str) -> None:
        run.touch(record.id)
        run.ledger.release(record.id)
        if record.host_id:
            run.outcome.touched_hosts.add(record.host_id)
        run.state.remove_instance(record.id)
        self._explained.discard(record.id)
        run.sink.instance_deleted(record.id)
        run.outcome.removed.append(record.id)
        run.sink.event(
            "instance-state",
            f"{record.id} removed: {why}",
            deployment=record.instance.deployment,
            instance=record.id,
            host_id=record.host_id,
        )

    def _place(self, run: _Pass) -> None:
        waiting = sorted(
            (r for r in run.state.instances.values() if not r.host_id),
            key=lambda r: (r.instance.deployment, r.instance.ordinal),
        )
        for record in waiting:
            deployment = run.state.deployments.get(record.instance.deployment)
            if deployment is None:
                continue
            if record.failures and record.next_attempt > run.now and not run.ignore_backoff:
                run.outcome.due_at(record.next_attempt)
                continue
            self._place_one(run, record, deployment)

    def _place_one(
        self, run: _Pass, record: InstanceRecord, deployment: deployment_pb2.Deployment
    ) -> None:
        options, request = placement_request(
            deployment, record.id, run.state.footprints, frozenset(record.avoid_hosts)
        )
        run.touch(record.id)
        # Explaining a refusal scans every host: do it once per instance, not on every
        # retry, and once per pass for instances that ask for the same thing.
        explained = record.instance.state == PENDING and record.id in self._explained
        shape = (deployment.name, deployment.version, request.candidates)
        sibling = run.reasons.get(shape)
        quick = explained or sibling is not None
        scheduler = run.scheduler_for(deployment)
        result = scheduler.place(request, reasons=not quick)
        if isinstance(result, Unplaced) and record.avoid_hosts:
            # Hosts that failed it are avoided, not banned: better there than nowhere.
            result = scheduler.place(_without_avoid(request), reasons=not quick)
        if isinstance(result, Unplaced):
            if explained:
                summary = record.instance.reason
            elif sibling is not None:
                summary = sibling[1].replace(sibling[0], record.id, 1)
            else:
                summary = result.summary
                run.reasons[shape] = (record.id, summary)
            self._explained.add(record.id)
            self._unplaced(run, record, deployment, Unplaced(record.id, summary, result.rejections))
            return
        self._explained.discard(record.id)
        self._placed(run, record, deployment, options, result)

    def _placed(
        self,
        run: _Pass,
        record: InstanceRecord,
        deployment: deployment_pb2.Deployment,
        options: Options,
        placement: Placement,
    ) -> None:
        spec, demand = next((s, d) for s, d in options if s.variety == placement.variety)
        reservation = run.ledger.reservation(record.id)
        vendor = reservation.demand.gpu_vendor if reservation is not None else demand.gpu_vendor
        moved = record.rescheduling
        run.state.move_instance(record, placement.host_id)
        record.spec = spec
        record.demand = demand
        record.gpus = GpuHold(vendor, placement.gpu_indices)
        record.constraints_key = deployment.constraints.SerializeToString(deterministic=True)
        record.instance.variety = placement.variety
        record.instance.ClearField("agent_status")
        if moved:
            record.instance.reschedules += 1
        record.rescheduling = False
        strategy = run.scheduler_for(deployment).strategy.name
        self._set_state(record, ASSIGNED, f"placed on {placement.host_id} ({strategy})")
        run.sink.instance(record.id, gpus=True)
        run.outcome.touched_hosts.add(placement.host_id)
        run.outcome.placed[record.id] = (placement.host_id, placement.variety)
        variety = f" as {placement.variety}" if placement.variety else ""
        run.sink.event(
            "instance-rescheduled" if moved else "instance-placed",
            f"{record.id} placed on {placement.host_id}{variety}",
            deployment=deployment.name,
            instance=record.id,
            host_id=placement.host_id,
        )

    def _unplaced(
        self,
        run: _Pass,
        record: InstanceRecord,
        deployment: deployment_pb2.Deployment,
        result: Unplaced,
    ) -> None:
        run.outcome.unplaced[record.id] = result.summary
        if record.failures:
            record.next_attempt = run.now + failure_delay(record.failures, self._rng)
        else:
            record.next_attempt = run.now + UNPLACED_RETRY_S
        run.outcome.due_at(record.next_attempt)
        if record.instance.state == PENDING and record.instance.reason == result.summary:
            return
        self._set_state(record, PENDING, result.summary)
        run.sink.instance(record.id)
        run.sink.event(
            "instance-pending",
            # The summary is a whole sentence that already names the instance.
            result.summary,
            deployment=deployment.name,
            instance=record.id,
        )

    def _set_state(
        self, record: InstanceRecord, to: fleet_state_pb2.InstanceState.ValueType, reason: str
    ) -> None:
        instance = record.instance
        if instance.state != to:
            instance.state_since.FromDatetime(self._clock.now())
        instance.state = to
        instance.reason = reason


def undo(ledger: FleetLedger, journal: dict[str, Reservation | None]) -> None:
    """Put back what the ledger held before a dry run touched it."""
    for instance_id, original in journal.items():
        ledger.release(instance_id)
        if original is not None:
            ledger.reserve(
                original.instance,
                original.deployment,
                original.host_id,
                original.demand,
                original.gpu_indices,
            )


def _without_avoid(request: PlacementRequest) -> PlacementRequest:
    return PlacementRequest(
        instance=request.instance,
        deployment=request.deployment,
        candidates=request.candidates,
        constraints=request.constraints,
    )
