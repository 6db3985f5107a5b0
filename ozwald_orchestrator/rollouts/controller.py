"""The rollout state machine: pure logic over what instances do and what the clock says.

A step looks at a deployment's instances (`Member`s: whether each runs the rollout's
target version, whether it is RUNNING and since when), updates the rollout's counts and
health bookkeeping, moves its state on (canaries waiting for promotion, success, failure
at the progress deadline) and chooses which old-version instances to replace now, within
the disruption budget (budget.py). It replaces nothing itself: the caller does
(replace.py), so the same logic runs on the live fleet and in property tests.

Times are wall-clock (Clock.now()): they are shown to people and stored, and a restarted
orchestrator continues a rollout from the stored times.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field

from ozwald.orchestrator.v1 import deployment_pb2, rollout_pb2

from ozwald_orchestrator.rollouts.budget import Budget
from ozwald_orchestrator.rollouts.strategy import Strategy

RUNNING = rollout_pb2.ROLLOUT_STATE_RUNNING
PAUSED = rollout_pb2.ROLLOUT_STATE_PAUSED
AWAITING_PROMOTION = rollout_pb2.ROLLOUT_STATE_AWAITING_PROMOTION
SUCCEEDED = rollout_pb2.ROLLOUT_STATE_SUCCEEDED
FAILED = rollout_pb2.ROLLOUT_STATE_FAILED
REVERTED = rollout_pb2.ROLLOUT_STATE_REVERTED
SUPERSEDED = rollout_pb2.ROLLOUT_STATE_SUPERSEDED
ACTIVE = frozenset({RUNNING, PAUSED, AWAITING_PROMOTION})


@dataclass(frozen=True)
class Member:
    """One instance of the deployment, as a rollout sees it."""

    id: str
    ordinal: int
    # Runs the rollout's target version (or will, once placed).
    updated: bool
    # RUNNING now.
    available: bool
    # When it last became RUNNING; None when it is not RUNNING.
    running_since: datetime.datetime | None
    # Its host is DOWN (silent, within the reschedule grace). It counts as unavailable
    # but is not replaced: the host cannot be told to stop it, so a copy placed elsewhere
    # would run twice. It is replaced in place once its host is back, or gets the new
    # version when the host is LOST and it is placed elsewhere.
    host_down: bool = False


@dataclass
class Progress:
    """A rollout and the per-instance bookkeeping its message does not carry."""

    rollout: rollout_pb2.Rollout
    # The deployment as last fully rolled out: what auto_revert goes back to (None when
    # the deployment never ran completely on one version before this rollout).
    stable: deployment_pb2.Deployment | None
    # When each instance was given the target version (replaced, or placed with it).
    replaced_at: dict[str, datetime.datetime] = field(default_factory=dict)
    # Instances of the target version that stayed RUNNING for min_healthy_time.
    healthy: set[str] = field(default_factory=set)
    # Instances of the target version that missed their healthy deadline.
    failed: set[str] = field(default_factory=set)

    @property
    def deployment(self) -> str:
        return self.rollout.deployment

    @property
    def active(self) -> bool:
        return self.rollout.state in ACTIVE

    @property
    def strategy(self) -> Strategy:
        return Strategy.of(self.rollout.strategy)


@dataclass
class Step:
    """What one step decided."""

    # Instances to replace with the target version now, in this order.
    replace: list[str] = field(default_factory=list)
    # Events to record: (kind, message).
    events: list[tuple[str, str]] = field(default_factory=list)
    # The rollout failed in this step (the caller reverts it when asked to).
    failed: bool = False
    # The rollout's message or bookkeeping changed (the caller stores it).
    changed: bool = False
    # When a step is next needed even if no instance changes (a health or deadline timer).
    next_due: datetime.datetime | None = None

    def due(self, moment: datetime.datetime) -> None:
        self.next_due = moment if self.next_due is None else min(self.next_due, moment)


def start(
    deployment: deployment_pb2.Deployment,
    *,
    rollout_id: int,
    from_version: int,
    stable: deployment_pb2.Deployment | None,
    now: datetime.datetime,
    is_revert: bool = False,
    reason: str = "",
) -> Progress:
    """A new rollout of `deployment` (its current version) from `from_version`."""
    strategy = Strategy.of(deployment.update)
    rollout = rollout_pb2.Rollout(
        deployment=deployment.name,
        id=rollout_id,
        from_version=from_version,
        to_version=deployment.version,
        state=RUNNING,
        reason=reason or f"replacing version {from_version} with {deployment.version}",
        strategy=strategy.to_proto(),
        desired=deployment.replicas,
        promoted=strategy.canaries == 0,
        is_revert=is_revert,
    )
    rollout.started_at.FromDatetime(now)
    rollout.updated_at.FromDatetime(now)
    _progress_deadline(rollout, now, strategy)
    return Progress(rollout=rollout, stable=stable)


def step(
    progress: Progress,
    members: Sequence[Member],
    budget: Budget,
    now: datetime.datetime,
    to_version: int,
) -> Step:
    """Advance an active rollout; `to_version` is the deployment's current version (a
    replica count change during a rollout moves it on without starting another)."""
    result = Step()
    rollout = progress.rollout
    if not progress.active:
        return result
    strategy = progress.strategy
    before = rollout.SerializeToString(deterministic=True)
    bookkeeping = (dict(progress.replaced_at), set(progress.healthy), set(progress.failed))
    rollout.to_version = to_version
    _forget_gone(progress, members)
    newly_healthy = _health(progress, members, strategy, now, result)
    if newly_healthy and rollout.state == RUNNING:
        rollout.updated_at.FromDatetime(now)
        _progress_deadline(rollout, now, strategy)
    _count(progress, members)
    if rollout.state == RUNNING:
        _advance(progress, members, strategy, now, result)
    if rollout.state == RUNNING:
        replaced = _replace(progress, members, budget, now, result)
        _count(progress, members, replaced)
    result.changed = rollout.SerializeToString(deterministic=True) != before or bookkeeping != (
        progress.replaced_at,
        progress.healthy,
        progress.failed,
    )
    return result


def pause(progress: Progress, now: datetime.datetime) -> bool:
    """True when it was paused now (False: it already was)."""
    rollout = progress.rollout
    if rollout.state == PAUSED:
        return False
    rollout.state = PAUSED
    rollout.reason = "paused by an operator; `ozwald rollout resume` continues it"
    rollout.updated_at.FromDatetime(now)
    rollout.ClearField("progress_deadline")
    return True


def resume(progress: Progress, now: datetime.datetime) -> bool:
    """True when it was resumed now (False: it was running already)."""
    rollout = progress.rollout
    if rollout.state == RUNNING:
        return False
    rollout.state = RUNNING
    rollout.reason = "resumed by an operator"
    rollout.updated_at.FromDatetime(now)
    _progress_deadline(rollout, now, progress.strategy)
    return True


def promote(progress: Progress, now: datetime.datetime, *, automatic: bool = False) -> None:
    rollout = progress.rollout
    rollout.promoted = True
    rollout.state = RUNNING
    rollout.reason = (
        "canaries healthy, promoted automatically" if automatic else "promoted by an operator"
    )
    rollout.updated_at.FromDatetime(now)
    _progress_deadline(rollout, now, progress.strategy)


def finish(
    progress: Progress,
    state: rollout_pb2.RolloutState.ValueType,
    reason: str,
    now: datetime.datetime,
) -> None:
    rollout = progress.rollout
    rollout.state = state
    rollout.reason = reason
    rollout.updated_at.FromDatetime(now)
    rollout.finished_at.FromDatetime(now)
    rollout.ClearField("progress_deadline")


def state_word(state: rollout_pb2.RolloutState.ValueType) -> str:
    return rollout_pb2.RolloutState.Name(state).removeprefix("ROLLOUT_STATE_").lower()


# Internals ------------------------------------------------------------------------------


def _forget_gone(progress: Progress, members: Sequence[Member]) -> None:
    """Instances removed by a scale-down leave the rollout's bookkeeping."""
    present = {m.id for m in members}
    progress.healthy &= present
    progress.failed &= present
    progress.replaced_at = {i: t for i, t in progress.replaced_at.items() if i in present}


def _health(
    progress: Progress,
    members: Sequence[Member],
    strategy: Strategy,
    now: datetime.datetime,
    result: Step,
) -> list[str]:
    newly: list[str] = []
    min_healthy = datetime.timedelta(seconds=strategy.min_healthy_s)
    healthy_deadline = datetime.timedelta(seconds=strategy.healthy_deadline_s)
    for member in members:
        if not member.updated:
            continue
        # An instance that got the target version without being replaced (it was
        # pending, or its spec did not change) is given its deadline from now.
        since = progress.replaced_at.setdefault(member.id, now)
        if member.id in progress.healthy:
            continue
        if member.available and member.running_since is not None:
            healthy_at = member.running_since + min_healthy
            if now >= healthy_at:
                progress.healthy.add(member.id)
                progress.failed.discard(member.id)
                newly.append(member.id)
                continue
            result.due(healthy_at)
        if member.id in progress.failed:
            continue
        deadline = since + healthy_deadline
        if now >= deadline:
            progress.failed.add(member.id)
            result.events.append(
                (
                    "rollout-progress",
                    f"{member.id} did not stay running for "
                    f"{strategy.min_healthy_s:g} s within its healthy deadline "
                    f"({strategy.healthy_deadline_s:g} s); it counts as failed",
                )
            )
        else:
            result.due(deadline)
    if newly:
        rollout = progress.rollout
        result.events.append(
            (
                "rollout-progress",
                f"{', '.join(newly)} healthy on version "
                f"{rollout.to_version} ({len(progress.healthy)} of {len(members)} healthy)",
            )
        )
    return newly


def _count(progress: Progress, members: Sequence[Member], replaced: Sequence[Member] = ()) -> None:
    """The rollout's counts; instances chosen for replacement count as updated and, as
    they stop now, as unavailable."""
    rollout = progress.rollout
    rollout.desired = len(members)
    rollout.updated = sum(1 for m in members if m.updated) + len(replaced)
    rollout.healthy = sum(1 for m in members if m.updated and m.id in progress.healthy)
    rollout.available = sum(1 for m in members if m.available) - sum(
        1 for m in replaced if m.available
    )


def _advance(
    progress: Progress,
    members: Sequence[Member],
    strategy: Strategy,
    now: datetime.datetime,
    result: Step,
) -> None:
    rollout = progress.rollout
    every_updated = all(m.updated for m in members)
    every_healthy = every_updated and rollout.healthy == len(members)
    if not rollout.promoted:
        target = min(strategy.canaries, len(members))
        if target == 0:
            # Scaled to nothing: there is no canary to wait for.
            rollout.promoted = True
        elif rollout.updated >= target and rollout.healthy >= target:
            if strategy.auto_promote:
                promote(progress, now, automatic=True)
                result.events.append(
                    (
                        "rollout-promoted",
                        f"{target} canar{'y' if target == 1 else 'ies'} "
                        f"healthy on version {rollout.to_version}; promoted automatically",
                    )
                )
            else:
                rollout.state = AWAITING_PROMOTION
                rollout.reason = (
                    f"{target} canar{'y is' if target == 1 else 'ies are'} healthy; "
                    f"`ozwald rollout promote {progress.deployment}` replaces the rest"
                )
                rollout.updated_at.FromDatetime(now)
                rollout.ClearField("progress_deadline")
                result.events.append(("rollout-progress", rollout.reason))
                return
    if rollout.promoted and every_healthy:
        finish(
            progress,
            SUCCEEDED,
            f"all {len(members)} instance(s) run version {rollout.to_version} and are healthy",
            now,
        )
        result.events.append(
            (
                "rollout-succeeded",
                f"rollout {rollout.id} to version {rollout.to_version} "
                f"succeeded ({rollout.reason})",
            )
        )
        return
    deadline = rollout.progress_deadline.ToDatetime(datetime.UTC)
    if now >= deadline:
        failed = sorted(progress.failed)
        why = (
            f"no instance became healthy for {strategy.progress_deadline_s:g} s "
            f"({rollout.healthy} of {len(members)} healthy on version {rollout.to_version}"
            + (f"; missed their healthy deadline: {', '.join(failed)}" if failed else "")
            + ")"
        )
        finish(progress, FAILED, why, now)
        result.failed = True
        result.events.append(("rollout-failed", f"rollout {rollout.id} failed: {why}"))
        return
    result.due(deadline)


def _replace(
    progress: Progress,
    members: Sequence[Member],
    budget: Budget,
    now: datetime.datetime,
    result: Step,
) -> list[Member]:
    rollout = progress.rollout
    strategy = progress.strategy
    chosen: list[Member] = []
    allowance = len(members)
    if not rollout.promoted:
        allowance = min(strategy.canaries, len(members)) - rollout.updated
    # A replacement counts against max_parallel until it is healthy, not only until it
    # runs: the next ones go only once the new version has proved itself.
    in_flight = sum(
        1 for m in members if m.updated and m.available and m.id not in progress.healthy
    )
    # Instances that are down anyway go first: replacing them costs no availability.
    # Those on a DOWN host wait (see Member.host_down); they use up budget meanwhile.
    old = sorted(
        (m for m in members if not m.updated and not m.host_down),
        key=lambda m: (m.available, m.ordinal),
    )
    for member in old:
        if allowance <= 0:
            break
        if not budget.allows(member.available, in_flight):
            continue
        budget.take(member.available)
        chosen.append(member)
        result.replace.append(member.id)
        progress.replaced_at[member.id] = now
        progress.healthy.discard(member.id)
        progress.failed.discard(member.id)
        allowance -= 1
    if result.replace:
        rollout.updated_at.FromDatetime(now)
        result.events.append(
            (
                "rollout-progress",
                f"replacing {', '.join(result.replace)} with version {rollout.to_version}",
            )
        )
    return chosen


def _progress_deadline(
    rollout: rollout_pb2.Rollout, now: datetime.datetime, strategy: Strategy
) -> None:
    rollout.progress_deadline.FromDatetime(
        now + datetime.timedelta(seconds=strategy.progress_deadline_s)
    )
