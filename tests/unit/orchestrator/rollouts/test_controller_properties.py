"""Property tests of the rollout controller on a fake clock.

Random fleets (instances up or down before the rollout starts), random strategies, and
random sequences of what instances do between steps (replacements that come up after a
while or never, old instances failing and recovering) and of clock steps. At every step:

- availability: the step never takes a deployment further below its budget than it
  already was: unavailable after <= max(max_parallel, unavailable before);
- canaries: before promotion no more than `canaries` instances run the new version
  (counting those that got it without a replacement: they were down anyway);
- a version that never becomes healthy fails once the progress deadline passes;
- a healthy version with no canaries to wait for succeeds.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st
from ozwald.orchestrator.v1 import deployment_pb2

from ozwald_orchestrator.rollouts import controller
from ozwald_orchestrator.rollouts.budget import Budget
from ozwald_orchestrator.rollouts.controller import Member, Progress
from ozwald_orchestrator.rollouts.strategy import Strategy

EPOCH = datetime.datetime(2026, 11, 27, 9, 0, tzinfo=datetime.UTC)


@dataclass
class Sim:
    """One instance in the model fleet."""

    ordinal: int
    updated: bool
    running_since: datetime.datetime | None
    # When a replacement comes up (None: never, the new version is broken).
    comes_up_at: datetime.datetime | None = None


@st.composite
def strategies(draw: st.DrawFn, replicas: int) -> Strategy:
    healthy_deadline = draw(st.integers(5, 120))
    return Strategy(
        max_parallel=draw(st.integers(1, 4)),
        min_healthy_s=draw(st.integers(0, healthy_deadline)),
        healthy_deadline_s=healthy_deadline,
        progress_deadline_s=healthy_deadline + draw(st.integers(0, 120)),
        auto_revert=draw(st.booleans()),
        canaries=draw(st.integers(0, replicas)),
        auto_promote=draw(st.booleans()),
    )


def _deployment(replicas: int, strategy: Strategy) -> deployment_pb2.Deployment:
    return deployment_pb2.Deployment(
        name="web", version=2, replicas=replicas, update=strategy.to_proto()
    )


def _members(fleet: list[Sim], now: datetime.datetime) -> list[Member]:
    return [
        Member(
            id=f"web-{s.ordinal}",
            ordinal=s.ordinal,
            updated=s.updated,
            available=s.running_since is not None and s.running_since <= now,
            running_since=s.running_since,
        )
        for s in fleet
    ]


def _unavailable(fleet: list[Sim], now: datetime.datetime) -> int:
    return sum(1 for s in fleet if s.running_since is None or s.running_since > now)


def _run(
    data: st.DataObject,
    *,
    broken: bool,
    outside_failures: bool,
    steps: int,
    shortest_clock_step: int = 0,
) -> tuple[Progress, Strategy, list[Sim], datetime.datetime]:
    replicas = data.draw(st.integers(1, 8), label="replicas")
    strategy = data.draw(strategies(replicas), label="strategy")
    now = EPOCH
    fleet = [
        Sim(
            ordinal=i,
            updated=False,
            running_since=EPOCH
            if not outside_failures or data.draw(st.booleans(), label="up at start")
            else None,
        )
        for i in range(replicas)
    ]
    progress = controller.start(
        _deployment(replicas, strategy), rollout_id=1, from_version=1, stable=None, now=now
    )
    for _ in range(steps):
        before = _unavailable(fleet, now)
        step = controller.step(
            progress,
            _members(fleet, now),
            Budget(strategy.max_parallel, before),
            now,
            to_version=2,
        )
        for instance_id in step.replace:
            sim = fleet[int(instance_id.rsplit("-", 1)[1])]
            assert not sim.updated, f"{instance_id} replaced twice"
            sim.updated = True
            sim.running_since = None
            delay = data.draw(st.integers(0, 60), label="comes up after")
            sim.comes_up_at = None if broken else now + datetime.timedelta(seconds=delay)
        after = _unavailable(fleet, now)
        assert after <= max(strategy.max_parallel, before), (before, after, step.replace)
        if not progress.rollout.promoted:
            assert sum(1 for s in fleet if s.updated) <= strategy.canaries
        if progress.rollout.state == controller.AWAITING_PROMOTION and data.draw(
            st.booleans(), label="promote"
        ):
            controller.promote(progress, now)
        if not progress.active:
            break
        seconds = data.draw(st.integers(shortest_clock_step, 40), label="clock step")
        now += datetime.timedelta(seconds=seconds)
        for sim in fleet:
            if sim.updated:
                if (
                    sim.comes_up_at is not None
                    and sim.comes_up_at <= now
                    and sim.running_since is None
                ):
                    sim.running_since = sim.comes_up_at
            elif outside_failures and data.draw(st.integers(0, 9), label="outside") == 0:
                # An old instance fails or recovers on its own.
                sim.running_since = None if sim.running_since is not None else now
    return progress, strategy, fleet, now


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_a_step_never_takes_more_than_the_budget_allows(data: st.DataObject) -> None:
    _run(
        data,
        broken=data.draw(st.booleans(), label="broken"),
        outside_failures=True,
        steps=data.draw(st.integers(1, 40), label="steps"),
    )


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_a_version_that_never_becomes_healthy_fails_at_the_progress_deadline(
    data: st.DataObject,
) -> None:
    progress, strategy, fleet, _ = _run(
        data, broken=True, outside_failures=False, steps=200, shortest_clock_step=1
    )
    rollout = progress.rollout
    assert rollout.state in (controller.FAILED, controller.AWAITING_PROMOTION)
    if rollout.state == controller.FAILED:
        assert "no instance became healthy" in rollout.reason
        # Nothing broken was healthy, and no more than max_parallel were taken down for it.
        assert rollout.healthy == 0
        assert sum(1 for s in fleet if s.updated) <= strategy.max_parallel
    else:
        # Canaries that never got healthy cannot be waiting for promotion.
        raise AssertionError(f"awaiting promotion with a broken version: {rollout}")


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_a_healthy_version_rolls_out_completely(data: st.DataObject) -> None:
    progress, strategy, fleet, _ = _run(
        data, broken=False, outside_failures=False, steps=400, shortest_clock_step=1
    )
    rollout = progress.rollout
    if rollout.state == controller.SUCCEEDED:
        assert all(s.updated for s in fleet)
        assert rollout.healthy == rollout.desired == len(fleet)
        return
    # It can only have failed when replacements took longer to come up than the
    # healthy deadline allowed, or be waiting for a promotion nobody gave.
    assert rollout.state in (controller.FAILED, controller.AWAITING_PROMOTION), rollout
    if rollout.state == controller.AWAITING_PROMOTION:
        assert strategy.canaries and not strategy.auto_promote
