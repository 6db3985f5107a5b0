"""Carrying out a disruption on the fleet: an instance replaced with its deployment's
current version (a rollout), or moved off a host (a drain).

Both stop the instance before its replacement starts: an instance is one service name on
one host, so the agent replaces the container in place, or the old host stops it as the
new one starts it. A replaced instance stays on its host when the new version still fits
there, which keeps a rollout from reshuffling the fleet; otherwise it is released and
placed again by the reconciler. A drained instance moves only when some other host can
take it now, so a drain never strands an instance before its deadline.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable

from ozwald.orchestrator.v1 import deployment_pb2, fleet_state_pb2

from ozwald_orchestrator.placement.ledger import FleetLedger
from ozwald_orchestrator.placement.model import Placement, Unplaced
from ozwald_orchestrator.placement.scheduler import Scheduler
from ozwald_orchestrator.placement_adapters import placement_request
from ozwald_orchestrator.reconciler import Options
from ozwald_orchestrator.state import NO_GPUS, FleetState, InstanceRecord
from ozwald_orchestrator.store.protocol import GpuHold

PENDING = fleet_state_pb2.INSTANCE_STATE_PENDING
ASSIGNED = fleet_state_pb2.INSTANCE_STATE_ASSIGNED


@dataclasses.dataclass
class Mover:
    """Moves instances on one fleet's state, ledger and scheduler."""

    state: FleetState
    ledger: FleetLedger
    scheduler: Scheduler
    now: datetime.datetime
    # The scheduler of a deployment's own placement strategy; None: `scheduler` for all.
    choose: Callable[[deployment_pb2.Deployment], Scheduler] | None = None

    def _scheduler(self, deployment: deployment_pb2.Deployment) -> Scheduler:
        return self.scheduler if self.choose is None else self.choose(deployment)

    def replace(
        self, record: InstanceRecord, deployment: deployment_pb2.Deployment
    ) -> tuple[str, str]:
        """Give the instance the deployment's current version: on its host when it fits
        there, else released to be placed again. Returns (old host, new host or "")."""
        old_host = record.host_id
        options, request = placement_request(deployment, record.id, self.state.footprints)
        result: Placement | Unplaced = Unplaced(record.id, "", ())
        if old_host:
            others = frozenset(h for h in self.ledger.host_ids() if h != old_host)
            result = self._scheduler(deployment).place(
                dataclasses.replace(request, avoid_hosts=others), reasons=False
            )
        record.instance.deployment_version = deployment.version
        if isinstance(result, Placement):
            self._placed(
                record,
                deployment,
                options,
                result,
                f"replaced with version {deployment.version} on {result.host_id}",
            )
            return old_host, result.host_id
        self.release(record, f"replaced with version {deployment.version}; placing it again")
        return old_host, ""

    def move_off(self, record: InstanceRecord, deployment: deployment_pb2.Deployment) -> str | None:
        """Move the instance to another host that can take it now; the new host, or None
        (it stays where it is) when none can."""
        old_host = record.host_id
        held = self.ledger.reservation(record.id)
        options, request = placement_request(
            deployment, record.id, self.state.footprints, frozenset({old_host})
        )
        result = self._scheduler(deployment).place(request, reasons=False)
        if isinstance(result, Unplaced):
            if held is not None:
                # place() let go of the reservation it had: the instance stays, so does it.
                self.ledger.reserve(
                    held.instance, held.deployment, held.host_id, held.demand, held.gpu_indices
                )
            return None
        record.instance.deployment_version = deployment.version
        record.instance.reschedules += 1
        self._placed(
            record, deployment, options, result, f"moved off {old_host} to {result.host_id}"
        )
        return result.host_id

    def release(self, record: InstanceRecord, reason: str) -> None:
        """Take the instance off its host; the reconciler places it again."""
        self.ledger.release(record.id)
        self.state.move_instance(record, "")
        record.spec = None
        record.demand = None
        record.gpus = NO_GPUS
        record.next_attempt = 0.0
        record.instance.ClearField("agent_status")
        _set_state(record, PENDING, reason, self.now)

    def _placed(
        self,
        record: InstanceRecord,
        deployment: deployment_pb2.Deployment,
        options: Options,
        placement: Placement,
        reason: str,
    ) -> None:
        spec, demand = next((s, d) for s, d in options if s.variety == placement.variety)
        reservation = self.ledger.reservation(record.id)
        vendor = reservation.demand.gpu_vendor if reservation is not None else demand.gpu_vendor
        self.state.move_instance(record, placement.host_id)
        record.spec = spec
        record.demand = demand
        record.gpus = GpuHold(vendor, placement.gpu_indices)
        record.constraints_key = deployment.constraints.SerializeToString(deterministic=True)
        record.instance.variety = placement.variety
        record.instance.ClearField("agent_status")
        _set_state(record, ASSIGNED, reason, self.now)


def _set_state(
    record: InstanceRecord,
    to: fleet_state_pb2.InstanceState.ValueType,
    reason: str,
    now: datetime.datetime,
) -> None:
    instance = record.instance
    if instance.state != to:
        instance.state_since.FromDatetime(now)
    instance.state = to
    instance.reason = reason
