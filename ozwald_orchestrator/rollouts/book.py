"""Every deployment's latest rollout: starting, superseding, operators' actions, storing.

The controller (controller.py) decides; the book keeps the rollouts, turns operators'
requests into state changes with the refusals people see, records events and marks
what changed for the store.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TypeVar

import grpc
from google.protobuf.message import Message
from ozwald.common.v1 import error_reason_pb2
from ozwald.orchestrator.v1 import deployment_pb2, rollout_pb2

from ozwald_orchestrator.clock import Clock
from ozwald_orchestrator.events import EventLog
from ozwald_orchestrator.persistence import Persister
from ozwald_orchestrator.rollouts import controller
from ozwald_orchestrator.rollouts.budget import Budget
from ozwald_orchestrator.rollouts.controller import Member, Progress, Step
from ozwald_orchestrator.rpc_errors import OrchestratorError
from ozwald_orchestrator.store.protocol import StoredRollout

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)

# The fields of a deployment whose change replaces running instances: a rollout. A
# change of the replica count (or of the update strategy alone) is not one.
ROLLOUT_FIELDS = frozenset({"candidates", "constraints", "strategy"})


class RolloutBook:
    """The latest rollout of each deployment."""

    def __init__(self, persister: Persister, events: EventLog, clock: Clock) -> None:
        self._persister = persister
        self._events = events
        self._clock = clock
        self._latest: dict[str, Progress] = {}

    def load(self, stored: Sequence[StoredRollout]) -> None:
        for record in stored:
            self._latest[record.rollout.deployment] = Progress(
                rollout=record.rollout,
                stable=record.stable,
                replaced_at=dict(record.replaced_at),
                healthy=set(record.healthy),
                failed=set(record.failed),
            )

    # Reading ----------------------------------------------------------------------------

    def latest(self, deployment: str) -> Progress | None:
        return self._latest.get(deployment)

    def active(self, deployment: str) -> Progress | None:
        progress = self._latest.get(deployment)
        return progress if progress is not None and progress.active else None

    def active_names(self) -> list[str]:
        return sorted(name for name, p in self._latest.items() if p.active)

    def get(self, deployment: str) -> Progress:
        """The current or latest rollout; ROLLOUT_NOT_FOUND when there never was one."""
        progress = self._latest.get(deployment)
        if progress is None:
            raise OrchestratorError(
                grpc.StatusCode.NOT_FOUND,
                error_reason_pb2.ERROR_REASON_ROLLOUT_NOT_FOUND,
                f"deployment {deployment!r} has no rollout: its candidates, constraints or "
                "placement strategy never changed since it was created",
                "a rollout starts when `ozwald apply` changes what the deployment runs",
                deployment=deployment,
            )
        return progress

    # Starting and ending ----------------------------------------------------------------

    def begin(
        self,
        old: deployment_pb2.Deployment,
        new: deployment_pb2.Deployment,
        *,
        is_revert: bool = False,
        reason: str = "",
    ) -> Progress:
        """A rollout from `old` (the version before) to `new`; an active one is
        superseded and the new one starts from whatever runs."""
        now = self._clock.now()
        latest = self._latest.get(new.name)
        if latest is None or latest.rollout.state == controller.SUCCEEDED:
            stable: deployment_pb2.Deployment | None = _copy(old)
        else:
            stable = latest.stable
        if latest is not None and latest.active:
            self.end(
                latest,
                controller.SUPERSEDED,
                f"superseded by version {new.version} before it finished",
                "rollout-superseded",
            )
        progress = controller.start(
            new,
            rollout_id=latest.rollout.id + 1 if latest is not None else 1,
            from_version=old.version,
            stable=stable,
            now=now,
            is_revert=is_revert,
            reason=reason,
        )
        self._latest[new.name] = progress
        self._mark(progress)
        strategy = progress.strategy
        self._events.record(
            "rollout-started",
            f"rollout {progress.rollout.id} from version {old.version} to "
            f"{new.version}{' (revert)' if is_revert else ''}: at most {strategy.max_parallel} "
            f"unavailable at once"
            + (
                f", {strategy.canaries} canar{'y' if strategy.canaries == 1 else 'ies'}"
                if strategy.canaries
                else ""
            ),
            deployment=new.name,
        )
        return progress

    def end(
        self,
        progress: Progress,
        state: rollout_pb2.RolloutState.ValueType,
        reason: str,
        kind: str,
    ) -> None:
        controller.finish(progress, state, reason, self._clock.now())
        self._mark(progress)
        self._events.record(
            kind,
            f"rollout {progress.rollout.id} {controller.state_word(state)}: {reason}",
            deployment=progress.deployment,
        )

    def removed(self, deployment: str) -> None:
        """The deployment was removed: its rollout ends."""
        progress = self.active(deployment)
        if progress is not None:
            self.end(
                progress,
                controller.SUPERSEDED,
                "the deployment was removed",
                "rollout-superseded",
            )

    # A step -----------------------------------------------------------------------------

    def advance(
        self, progress: Progress, members: Sequence[Member], budget: Budget, to_version: int
    ) -> Step:
        step = controller.step(progress, members, budget, self._clock.now(), to_version)
        for kind, message in step.events:
            self._events.record(kind, message, deployment=progress.deployment)
        if step.changed:
            self._mark(progress)
        return step

    # Operators --------------------------------------------------------------------------

    def pause(self, deployment: str) -> Progress:
        progress = self._require(
            deployment,
            (controller.RUNNING, controller.PAUSED, controller.AWAITING_PROMOTION),
            "pause",
            "running",
        )
        if controller.pause(progress, self._clock.now()):
            self._mark(progress)
            self._events.record(
                "rollout-paused",
                f"rollout {progress.rollout.id} paused",
                deployment=deployment,
            )
        return progress

    def resume(self, deployment: str) -> Progress:
        progress = self._require(
            deployment, (controller.RUNNING, controller.PAUSED), "resume", "paused"
        )
        if controller.resume(progress, self._clock.now()):
            self._mark(progress)
            self._events.record(
                "rollout-resumed",
                f"rollout {progress.rollout.id} resumed",
                deployment=deployment,
            )
        return progress

    def promote(self, deployment: str) -> Progress:
        progress = self._latest.get(deployment)
        if progress is not None and progress.rollout.promoted and progress.active:
            return progress  # promoted already: asking again changes nothing
        progress = self._require(
            deployment, (controller.AWAITING_PROMOTION,), "promote", "waiting for promotion"
        )
        controller.promote(progress, self._clock.now())
        self._mark(progress)
        self._events.record(
            "rollout-promoted",
            f"rollout {progress.rollout.id} promoted; replacing the rest",
            deployment=deployment,
        )
        return progress

    def _require(
        self,
        deployment: str,
        states: tuple[rollout_pb2.RolloutState.ValueType, ...],
        action: str,
        wanted: str,
    ) -> Progress:
        progress = self.get(deployment)
        state = progress.rollout.state
        if state in states:
            return progress
        word = controller.state_word(state)
        raise OrchestratorError(
            grpc.StatusCode.FAILED_PRECONDITION,
            error_reason_pb2.ERROR_REASON_ROLLOUT_NOT_ACTIVE,
            f"cannot {action} the rollout of {deployment!r}: rollout {progress.rollout.id} is "
            f"{word}, not {wanted} ({progress.rollout.reason})",
            f"see it with `ozwald rollout status {deployment}`",
            deployment=deployment,
            state=rollout_pb2.RolloutState.Name(state),
        )

    def touch(self, progress: Progress) -> None:
        """The caller changed the rollout's message: store it."""
        self._mark(progress)

    def _mark(self, progress: Progress) -> None:
        key = (progress.deployment, progress.rollout.id)
        self._persister.rollout(key, lambda: _stored(progress))


def _stored(progress: Progress) -> StoredRollout:
    return StoredRollout(
        rollout=_copy(progress.rollout),
        stable=progress.stable,
        replaced_at=dict(progress.replaced_at),
        healthy=frozenset(progress.healthy),
        failed=frozenset(progress.failed),
    )


def _copy(message: M) -> M:
    copied = type(message)()
    copied.CopyFrom(message)
    return copied
