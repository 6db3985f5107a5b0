"""`AuditTrail`: turns the fleet's changes into audit records (docs/audit.md).

Every change to the fleet is marked for the store (persistence.py), because the store
must hold it; the trail watches those marks, so nothing that changes fleet state can
skip the audit log. A mark only names what changed (and is often made before the
change is complete), so the trail compares each marked instance, host, assignment and
rollout with what it last recorded when a step is over (`settle`), and records the
difference once. A step is one agent message, one operator call, one reconcile pass or health
check; the store's write settles whatever is still open, so a step that forgot to
settle is recorded late, never lost.

Who acted is the actor current when the change was marked: `acting(actor)` sets it for
the code inside, and each gRPC call sets it for itself (`set_actor`), because every call
runs in its own asyncio task and context. Deployments are recorded at once, when the
change to the desired state is made, from the messages themselves.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from ozwald.orchestrator.v1 import deployment_pb2, rollout_pb2

from ozwald_orchestrator.audit.kinds import (
    ASSIGNMENT_CHANGED,
    DEPLOYMENT_CREATED,
    DEPLOYMENT_DELETED,
    DEPLOYMENT_UPDATED,
    HOST_JOINED,
    HOST_STATE_CHANGED,
    INSTANCE_CREATED,
    INSTANCE_DELETED,
    INSTANCE_PLACED,
    INSTANCE_RESCHEDULED,
    INSTANCE_STATE_CHANGED,
    ORCHESTRATOR,
    ROLLOUT_CHANGED,
    ROLLOUT_STARTED,
)
from ozwald_orchestrator.audit.log import AuditLog, AuditLogClosedError
from ozwald_orchestrator.audit.states import (
    assignment_state,
    deployment_state,
    host_state,
    instance_state,
    joined_host,
    rollout_state,
)
from ozwald_orchestrator.state import FleetState
from ozwald_orchestrator.store.protocol import FleetSnapshot, RemovedDeployment, StoredRollout

logger = logging.getLogger(__name__)

_actor: contextvars.ContextVar[str] = contextvars.ContextVar("audit_actor", default=ORCHESTRATOR)

State = dict[str, Any]
K = TypeVar("K")
_INSTANCE, _HOST, _ASSIGNMENT = "instance", "host", "assignment"


def current_actor() -> str:
    """Who the change being made now is attributed to."""
    return _actor.get()


def set_actor(actor: str) -> None:
    """Attribute what the current asyncio task changes from now on to `actor` (a gRPC
    handler names its caller once; the task's context ends with the call)."""
    _actor.set(actor)


class AuditTrail:
    """Records what changed in `state` since it was last recorded, into `log` (None: the
    trail only keeps its books, for a fleet run without an audit log)."""

    def __init__(self, log: AuditLog | None, state: FleetState) -> None:
        self.log = log
        self._state = state
        # What was last recorded (or loaded) of each thing: the next record's before.
        self._instances: dict[str, State] = {}
        self._hosts: dict[str, State] = {}
        self._assignments: dict[str, State] = {}
        self._deployments: dict[str, State] = {}
        self._rollouts: dict[tuple[str, int], State] = {}
        # Rollouts marked since the last settle: how to read each now, and the actor.
        self._touched_rollouts: dict[tuple[str, int], tuple[Callable[[], StoredRollout], str]] = {}
        # (what, id) marked since the last settle, in the order first marked (a host
        # going down before its instances), with the actor current at that mark.
        self._touched: dict[tuple[str, str], str] = {}

    def load(self, snapshot: FleetSnapshot) -> None:
        """Start from what the store held: the last run recorded everything up to it.
        Call before the fleet changes anything it loaded."""
        for deployment in snapshot.deployments:
            self._deployments[deployment.name] = deployment_state(deployment)
        for instance in snapshot.instances:
            self._instances[instance.id] = instance_state(instance)
        for host in snapshot.hosts:
            self._hosts[host.id] = host_state(host)
        for host_id, assignment in snapshot.assignments.items():
            self._assignments[host_id] = assignment_state(assignment)
        for stored in snapshot.rollouts:
            rollout = stored.rollout
            self._rollouts[(rollout.deployment, rollout.id)] = rollout_state(rollout)

    # The store's marks ------------------------------------------------------------------

    def instance_marked(self, instance_id: str) -> None:
        if instance_id not in self._instances:
            # Made whole before it is first marked: record its creation now, so that a
            # placement in the same step gets a record of its own.
            self._settle_instance(instance_id, _actor.get())
            return
        self._touched.setdefault((_INSTANCE, instance_id), _actor.get())

    def host_marked(self, host_id: str) -> None:
        self._touched.setdefault((_HOST, host_id), _actor.get())

    def assignment_marked(self, host_id: str) -> None:
        self._touched.setdefault((_ASSIGNMENT, host_id), _actor.get())

    def rollout_marked(self, key: tuple[str, int], stored: Callable[[], StoredRollout]) -> None:
        previous = self._touched_rollouts.get(key)
        self._touched_rollouts[key] = (stored, previous[1] if previous else _actor.get())

    def desired_marked(
        self,
        upserts: Sequence[deployment_pb2.Deployment],
        removed: Sequence[RemovedDeployment],
    ) -> None:
        actor = _actor.get()
        for deployment in upserts:
            before = self._deployments.get(deployment.name)
            after = deployment_state(deployment)
            self._deployments[deployment.name] = after
            self.record(
                DEPLOYMENT_CREATED if before is None else DEPLOYMENT_UPDATED,
                actor=actor,
                deployment=deployment.name,
                before=before,
                after=after,
            )
        for gone in removed:
            self.record(
                DEPLOYMENT_DELETED,
                actor=actor,
                deployment=gone.name,
                before=self._deployments.pop(gone.name, None),
            )

    # Steps ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def acting(self, actor: str) -> Iterator[None]:
        """A step taken by `actor`: what was open before is settled first (as whoever
        made it), what happens inside is attributed to `actor` and settled at the end."""
        self.settle()
        token = _actor.set(actor)
        try:
            yield
        finally:
            self.settle()
            _actor.reset(token)

    def settle(self) -> None:
        """Record every marked thing whose recorded state differs from what it is now."""
        if self._touched_rollouts:
            rollouts, self._touched_rollouts = self._touched_rollouts, {}
            for rollout_key, (stored, actor) in rollouts.items():
                self._settle_rollout(rollout_key, stored().rollout, actor)
        if not self._touched:
            return
        touched, self._touched = self._touched, {}
        for (what, key), actor in touched.items():
            if what == _INSTANCE:
                self._settle_instance(key, actor)
            elif what == _HOST:
                self._settle_host(key, actor)
            else:
                self._settle_assignment(key)

    def record(
        self,
        kind: str,
        *,
        actor: str | None = None,
        deployment: str = "",
        host_id: str = "",
        instance: str = "",
        before: Any = None,
        after: Any = None,
    ) -> None:
        """Record one change; `actor` defaults to the current one. For what the marks
        cannot show (an operator's action on something the fleet state does not hold)."""
        if self.log is None:
            return
        try:
            self.log.record(
                actor or _actor.get(),
                kind,
                deployment=deployment,
                host_id=host_id,
                instance=instance,
                before=before,
                after=after,
            )
        except AuditLogClosedError:
            # Only at shutdown, after the log closed: streams ending late.
            logger.warning(
                "not recorded, the audit log is closed: %s %s", kind, instance or host_id
            )

    async def committed(self) -> None:
        """Settle, then wait until the log has committed everything recorded so far
        (what an operator's call awaits before it answers)."""
        self.settle()
        if self.log is not None:
            await self.log.flushed()

    # Differences ------------------------------------------------------------------------

    def _settle_instance(self, instance_id: str, actor: str) -> None:
        record = self._state.instances.get(instance_id)
        before = self._instances.get(instance_id)
        if record is None:
            if before is not None:
                del self._instances[instance_id]
                self.record(
                    INSTANCE_DELETED,
                    actor=ORCHESTRATOR,
                    # The ordinal follows the last dash; deployment names are DNS labels.
                    deployment=instance_id.rpartition("-")[0],
                    host_id=before["host_id"],
                    instance=instance_id,
                    before=before,
                )
            return
        after = instance_state(record.instance)
        if not _moved_on(self._instances, instance_id, after):
            return
        if before is None:
            kind = INSTANCE_CREATED
        elif after["host_id"] and after["host_id"] != before["host_id"]:
            rescheduled = after["reschedules"] > before["reschedules"]
            kind = INSTANCE_RESCHEDULED if rescheduled else INSTANCE_PLACED
        else:
            kind = INSTANCE_STATE_CHANGED
        self.record(
            kind,
            # Placing is the orchestrator's decision whoever's step led to it.
            actor=actor if kind == INSTANCE_STATE_CHANGED else ORCHESTRATOR,
            deployment=record.instance.deployment,
            host_id=after["host_id"] or (before or {}).get("host_id", ""),
            instance=instance_id,
            before=before,
            after=after,
        )

    def _settle_host(self, host_id: str, actor: str) -> None:
        record = self._state.hosts.get(host_id)
        if record is None:
            return
        before = self._hosts.get(host_id)
        after = host_state(record.host)
        if not _moved_on(self._hosts, host_id, after):
            return
        if before is None:
            self.record(HOST_JOINED, actor=actor, host_id=host_id, after=joined_host(record.host))
            return
        self.record(HOST_STATE_CHANGED, actor=actor, host_id=host_id, before=before, after=after)

    def _settle_rollout(
        self, key: tuple[str, int], rollout: rollout_pb2.Rollout, actor: str
    ) -> None:
        before = self._rollouts.get(key)
        after = rollout_state(rollout)
        if not _moved_on(self._rollouts, key, after):
            return
        self.record(
            ROLLOUT_STARTED if before is None else ROLLOUT_CHANGED,
            actor=actor,
            deployment=rollout.deployment,
            before=before,
            after=after,
        )

    def _settle_assignment(self, host_id: str) -> None:
        record = self._state.hosts.get(host_id)
        if record is None:
            return
        before = self._assignments.get(host_id)
        after = assignment_state(record.assignment)
        if not _moved_on(self._assignments, host_id, after):
            return
        self.record(
            ASSIGNMENT_CHANGED, actor=ORCHESTRATOR, host_id=host_id, before=before, after=after
        )


def _moved_on(recorded: dict[K, State], key: K, now: State) -> bool:
    """Whether `key` is no longer as last recorded; if so, `now` is what is recorded."""
    if recorded.get(key) == now:
        return False
    recorded[key] = now
    return True
