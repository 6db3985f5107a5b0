"""Draining hosts: a cordoned host's instances move elsewhere within the disruption budget.

A drain lives on its host's record (Host.drain), so it is stored with the host and a
restarted orchestrator continues it. Each reconcile pass moves, per draining host, the
instances the budget allows (those already down first: moving them costs nothing) to
hosts that can take them now; an instance no other host can take stays until the
deadline. At the deadline everything left is released at once and placed wherever it
fits (DEADLINE_PASSED). A host with nothing left on it is COMPLETE, and stays cordoned.
A draining host that is DOWN moves nothing, deadline or not: it would keep running
what moved. Once LOST, its instances are placed elsewhere like any lost host's.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field

from ozwald.orchestrator.v1 import fleet_state_pb2

from ozwald_orchestrator.clock import Clock
from ozwald_orchestrator.events import EventLog
from ozwald_orchestrator.persistence import Persister
from ozwald_orchestrator.rollouts.budget import Budgets, available
from ozwald_orchestrator.rollouts.replace import Mover
from ozwald_orchestrator.state import DOWN, FleetState, HostRecord

logger = logging.getLogger(__name__)

RUNNING = fleet_state_pb2.DRAIN_STATE_RUNNING
COMPLETE = fleet_state_pb2.DRAIN_STATE_COMPLETE
DEADLINE_PASSED = fleet_state_pb2.DRAIN_STATE_DEADLINE_PASSED
CANCELLED = fleet_state_pb2.DRAIN_STATE_CANCELLED
DEFAULT_DEADLINE_S = 600.0


@dataclass
class DrainStep:
    """What one pass over the draining hosts did."""

    # Hosts whose set of instances changed (their assignments are rebuilt).
    touched_hosts: set[str] = field(default_factory=set)
    # Instances released without a host (placed by the reconciler's next pass).
    released: int = 0
    # When the next deadline falls (wall clock), if a drain is running.
    next_due: datetime.datetime | None = None


class Drains:
    """Starts, advances and cancels drains."""

    def __init__(
        self, state: FleetState, persister: Persister, events: EventLog, clock: Clock
    ) -> None:
        self._state = state
        self._persister = persister
        self._events = events
        self._clock = clock
        # Hosts with a running drain: asked on every instance state change, so kept
        # rather than found by a scan of every host.
        self._running: set[str] = set()

    def load(self) -> None:
        """Drains that were running when the orchestrator stopped continue."""
        self._running = {h for h, r in self._state.hosts.items() if r.host.drain.state == RUNNING}

    def any_running(self) -> bool:
        return bool(self._running)

    def draining(self) -> list[HostRecord]:
        hosts = self._state.hosts
        return [hosts[h] for h in sorted(self._running) if h in hosts]

    def start(self, record: HostRecord, deadline_s: float) -> bool:
        """Begin draining a (cordoned) host; False when a drain already runs there (the
        request is then answered with it, unchanged)."""
        host = record.host
        if host.drain.state == RUNNING:
            return False
        now = self._clock.now()
        host.drain.Clear()
        host.drain.state = RUNNING
        host.drain.started_at.FromDatetime(now)
        host.drain.deadline.FromDatetime(now + datetime.timedelta(seconds=deadline_s))
        host.drain.remaining = sum(1 for _ in self._state.instances_on(record.id))
        self._running.add(record.id)
        self._persister.host(record.id)
        self._events.record(
            "drain-started",
            f"draining {record.id}: {host.drain.remaining} instance(s) to move, deadline "
            f"{_seconds(deadline_s)}",
            host_id=record.id,
        )
        return True

    def cancel(self, host_id: str) -> bool:
        """Cancel the host's running drain (uncordon); False when none runs."""
        record = self._state.hosts.get(host_id)
        if record is None or record.host.drain.state != RUNNING:
            return False
        drain = record.host.drain
        drain.state = CANCELLED
        self._running.discard(host_id)
        drain.finished_at.FromDatetime(self._clock.now())
        self._persister.host(host_id)
        self._events.record(
            "drain-complete",
            f"{host_id}'s drain cancelled with {drain.remaining} instance(s) still there",
            host_id=host_id,
        )
        return True

    def step(self, budgets: Budgets, mover: Mover) -> DrainStep:
        result = DrainStep()
        now = self._clock.now()
        for record in self.draining():
            drain = record.host.drain
            deadline = drain.deadline.ToDatetime(datetime.UTC)
            if record.state == DOWN:
                # Unreachable: it cannot be told to stop what it runs, so anything moved
                # or released now would run twice. It waits, even past its deadline, until
                # the host is back (READY: the drain goes on) or LOST (its instances are
                # placed elsewhere as for any lost host); both wake the reconciler.
                if now < deadline:
                    result.next_due = (
                        deadline if result.next_due is None else min(result.next_due, deadline)
                    )
                continue
            if now >= deadline:
                self._deadline(record, mover, result)
                continue
            self._move(record, budgets, mover, result)
            remaining = sum(1 for _ in self._state.instances_on(record.id))
            if remaining != drain.remaining:
                drain.remaining = remaining
                self._persister.host(record.id)
            if remaining == 0:
                drain.state = COMPLETE
                self._running.discard(record.id)
                drain.finished_at.FromDatetime(now)
                self._persister.host(record.id)
                self._events.record(
                    "drain-complete",
                    f"{record.id} is drained: nothing left on it; it stays cordoned "
                    "(`ozwald uncordon` lets it take instances again)",
                    host_id=record.id,
                )
                continue
            result.next_due = (
                deadline if result.next_due is None else min(result.next_due, deadline)
            )
        return result

    def _move(self, record: HostRecord, budgets: Budgets, mover: Mover, result: DrainStep) -> None:
        # Instances already down go first: moving them costs no availability.
        waiting = sorted(
            self._state.instances_on(record.id),
            key=lambda r: (available(r.instance), r.instance.deployment, r.instance.ordinal),
        )
        for instance in waiting:
            deployment = self._state.deployments.get(instance.instance.deployment)
            if deployment is None:
                continue  # the reconciler removes it
            budget = budgets.of(deployment)
            up = available(instance.instance)
            if not budget.allows(up):
                continue
            moved_to = mover.move_off(instance, deployment)
            if moved_to is None:
                continue
            budget.take(up)
            self._persister.instance(instance.id, gpus=True)
            result.touched_hosts.update((record.id, moved_to))
            self._events.record(
                "drain-progress",
                f"moved {instance.id} off {record.id} to {moved_to}",
                deployment=deployment.name,
                instance=instance.id,
                host_id=record.id,
            )

    def _deadline(self, record: HostRecord, mover: Mover, result: DrainStep) -> None:
        drain = record.host.drain
        left = list(self._state.instances_on(record.id))
        for instance in left:
            mover.release(
                instance, f"{record.id} drained and its deadline passed; placing it elsewhere"
            )
            instance.rescheduling = True
            self._persister.instance(instance.id, gpus=True)
        if left:
            result.touched_hosts.add(record.id)
            result.released += len(left)
        drain.state = DEADLINE_PASSED
        self._running.discard(record.id)
        drain.remaining = 0
        drain.finished_at.FromDatetime(self._clock.now())
        self._persister.host(record.id)
        names = ", ".join(i.id for i in left) or "nothing"
        self._events.record(
            "drain-deadline",
            f"{record.id}'s drain deadline passed; stopped {names} there to place elsewhere",
            host_id=record.id,
        )


def _seconds(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"
