"""Dry runs and explanations: where instances would go, and why, changing nothing.

A plan runs the reconciler on copies of the instances against the live ledger, and
undoes every reservation it made before anything else runs on the event loop: copying a
large fleet's ledger would hold the loop far longer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ozwald.orchestrator.v1 import (
    deployment_pb2,
    fleet_service_pb2,
    fleet_state_pb2,
    placement_pb2,
)

from ozwald_orchestrator.clock import Clock
from ozwald_orchestrator.desired_state import DELETE, DesiredChange
from ozwald_orchestrator.placement.host_state import Reservation
from ozwald_orchestrator.placement.ledger import FleetLedger
from ozwald_orchestrator.placement.model import Rejection, Verdict
from ozwald_orchestrator.placement.scheduler import Scheduler
from ozwald_orchestrator.placement_adapters import placement_request
from ozwald_orchestrator.reconciler import Reconciler, undo
from ozwald_orchestrator.state import FleetState, InstanceRecord

# Placed instances explained host by host; the others of a large deployment get a summary.
EXPLAINED_IN_DETAIL = 10

Judgement = tuple[str, list[Verdict], list[Rejection]]


class _DryRunSink:
    """The reconciler's ChangeSink for a plan: it keeps nothing."""

    def instance(self, instance_id: str, *, gpus: bool = False) -> None:
        return None

    def instance_deleted(self, instance_id: str) -> None:
        return None

    def event(
        self,
        kind: str,
        message: str,
        *,
        deployment: str = "",
        instance: str = "",
        host_id: str = "",
    ) -> None:
        return None


def dry_run(
    state: FleetState,
    change: DesiredChange,
    ledger: FleetLedger,
    scheduler: Scheduler,
    clock: Clock,
    *,
    choose: Callable[[deployment_pb2.Deployment], Scheduler] | None = None,
) -> FleetState:
    """The instances as they would be after `change`: a copy; `state` and the ledger are
    left exactly as they were. `choose` gives each deployment its strategy's scheduler."""
    scratch = FleetState(
        desired_version=state.desired_version,
        deployments=change.deployments,
        deployment_versions=state.deployment_versions,
        footprints=state.footprints,
    )
    for record in state.instances.values():
        scratch.add_instance(_copy_record(record))
    journal: dict[str, Reservation | None] = {}
    try:
        Reconciler(clock).run(
            scratch,
            ledger,
            scheduler,
            _DryRunSink(),
            place_all_pending=True,
            journal=journal,
            choose=choose,
        )
    finally:
        undo(ledger, journal)
    return scratch


def fleet_plan(
    change: DesiredChange, state: FleetState, desired_version: int
) -> placement_pb2.FleetPlan:
    """The change with where each instance of the touched deployments is (or would be)."""
    plan = placement_pb2.FleetPlan(desired_version=desired_version)
    for c in change.changes:
        entry = plan.changes.add()
        entry.CopyFrom(c)
        if c.kind == DELETE:
            continue
        for record in state.instances_of(c.deployment):
            placed = entry.instances.add(
                instance=record.id, host_id=record.host_id, variety=record.instance.variety
            )
            if not record.host_id:
                placed.reason = record.instance.reason
    return plan


async def explain_deployment(
    state: FleetState,
    deployment: deployment_pb2.Deployment,
    scheduler: Scheduler,
    strategy_name: str,
) -> fleet_service_pb2.ExplainDeploymentResponse:
    """Why each instance is (not) placed where it is. Judging every host for one instance
    takes milliseconds in a large fleet, so the event loop gets a turn between instances;
    pending instances that ask for the same share one judgement, and placed ones beyond the
    first EXPLAINED_IN_DETAIL get a summary only."""
    response = fleet_service_pb2.ExplainDeploymentResponse(strategy=strategy_name)
    pending: dict[frozenset[str], tuple[str, Judgement]] = {}
    detailed = 0
    for record in state.instances_of(deployment.name):
        avoid = frozenset(record.avoid_hosts)
        if record.host_id and detailed >= EXPLAINED_IN_DETAIL:
            response.instances.add(
                instance=record.id,
                host_id=record.host_id,
                summary=f"{record.id} is placed on {record.host_id} ({record.instance.reason}); "
                f"the first {EXPLAINED_IN_DETAIL} placed instances are explained in detail",
            )
            continue
        if not record.host_id and avoid in pending:
            first, (summary, best, rejections) = pending[avoid]
            summary = summary.replace(first, record.id, 1)
        else:
            _, request = placement_request(deployment, record.id, state.footprints, avoid)
            summary, best, rejections = scheduler.explain(request, record.host_id or None)
            if record.host_id:
                detailed += 1
            else:
                pending[avoid] = (record.id, (summary, best, rejections))
            await asyncio.sleep(0)
            if state.instances.get(record.id) is not record:
                continue  # removed while the loop had its turn
        explanation = response.instances.add(
            instance=record.id, host_id=record.host_id, summary=summary
        )
        for verdict in best:
            explanation.best.add(
                host_id=verdict.host_id,
                feasible=verdict.feasible,
                filter=verdict.filter,
                reason=verdict.reason,
                score=verdict.score,
                variety=verdict.variety,
            )
        for rejection in rejections:
            explanation.rejections.add(
                filter=rejection.filter, hosts=rejection.hosts, examples=rejection.examples
            )
    return response


def _copy_record(record: InstanceRecord) -> InstanceRecord:
    instance = fleet_state_pb2.Instance()
    instance.CopyFrom(record.instance)
    return InstanceRecord(
        instance=instance,
        spec=record.spec,
        demand=record.demand,
        gpus=record.gpus,
        failures=record.failures,
        next_attempt=record.next_attempt,
        avoid_hosts=set(record.avoid_hosts),
        constraints_key=record.constraints_key,
        rescheduling=record.rescheduling,
    )
