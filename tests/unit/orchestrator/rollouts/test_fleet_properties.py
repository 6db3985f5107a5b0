"""Property tests of rollouts through the whole fleet core (placement, assignments,
agents' reports, the store) on a fake clock.

Random fleet sizes, replica counts and strategies; agents that bring a replacement up
after a random number of ticks, or never (a broken version); sometimes a host drained in
the middle of it all. Around every reconcile pass (and the drain call):
unavailable after <= max(max_parallel, unavailable before). A broken version with
auto_revert ends REVERTED, every instance runs the old spec again, and a drain started on
the way completes with the host empty.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from ozwald.common.v1 import service_spec_pb2
from ozwald.orchestrator.v1 import fleet_state_pb2

from ozwald_orchestrator.rollouts import controller
from tests.unit.orchestrator.rollouts.agents import Fleet3, web


class SlowAgents(Fleet3):
    """Agents that bring each new spec up after a few ticks chosen at random; a
    `:broken` image never comes up."""

    def __init__(self, path: Path, rng: random.Random) -> None:
        super().__init__(path)
        self._rng = rng
        self._ticks_left: dict[tuple[str, str], int] = {}
        self.health = self._comes_up

    def _comes_up(self, spec: service_spec_pb2.ServiceSpec) -> bool:
        if spec.image.endswith(":broken"):
            return False
        key = (spec.name, spec.image)
        if key not in self._ticks_left:
            self._ticks_left[key] = self._rng.randint(0, 3)
        return self._ticks_left[key] <= 0

    def age(self) -> None:
        for key in self._ticks_left:
            self._ticks_left[key] -= 1

    async def checked_tick(self, seconds: float, max_parallel: int) -> None:
        """A tick that checks the availability invariant around each pass."""
        self.clock.advance(seconds)
        self.age()
        self.heartbeat(*self.sessions)
        for _ in range(2):
            self.agents()
            before = self.unavailable("web")
            await self.settle()
            after = self.unavailable("web")
            assert after <= max(max_parallel, before), (before, after)


async def _scenario(
    path: Path,
    *,
    hosts: int,
    replicas: int,
    max_parallel: int,
    canaries: int,
    seed: int,
    drain_at: int | None,
) -> SlowAgents:
    fleet = SlowAgents(path, random.Random(seed))
    for n in range(hosts):
        fleet.join(f"h{n + 1}")
    strategy = {
        "max_parallel": max_parallel,
        "min_healthy_s": 5,
        "healthy_deadline_s": 30,
        "progress_deadline_s": 60,
        "auto_revert": True,
        "canaries": canaries,
        "auto_promote": True,
    }
    await fleet.apply(web(replicas, **strategy))  # type: ignore[arg-type]
    for _ in range(10):
        await fleet.checked_tick(2, max_parallel)
    assert fleet.unavailable("web") == 0
    # The apply's own pass starts the rollout: it is held to the budget too.
    await fleet.apply(web(replicas, image="ozwald/tiny:broken", **strategy))  # type: ignore[arg-type]
    assert fleet.unavailable("web") <= max_parallel
    for tick in range(80):
        if tick == drain_at:
            before = fleet.unavailable("web")
            await fleet.fleet.drain("h1", 600)
            assert fleet.unavailable("web") <= max(max_parallel, before)
        await fleet.checked_tick(3, max_parallel)
        latest = fleet.fleet.rollouts.latest("web")
        assert latest is not None
        if (
            latest.rollout.is_revert
            and latest.rollout.state == controller.SUCCEEDED
            and (drain_at is None or tick > drain_at)
        ):
            break
    for _ in range(10):
        await fleet.checked_tick(3, max_parallel)
    return fleet


@dataclass(frozen=True)
class Scenario:
    hosts: int
    replicas: int
    max_parallel: int
    canaries: int
    seed: int
    # The tick of the broken phase at which h1 is drained, if any.
    drain_at: int | None


SCENARIOS = st.builds(
    Scenario,
    hosts=st.integers(1, 3),
    replicas=st.integers(1, 5),
    max_parallel=st.integers(1, 3),
    canaries=st.integers(0, 2),
    seed=st.integers(0, 1000),
    drain_at=st.none() | st.integers(0, 15),
)


@settings(max_examples=20, deadline=None)
@given(scenario=SCENARIOS)
def test_a_broken_version_is_reverted_without_breaking_the_budget(scenario: Scenario) -> None:
    # A single host has nowhere to move to: only its deadline would empty it.
    drain_at = scenario.drain_at if scenario.hosts > 1 else None
    with tempfile.TemporaryDirectory() as directory:
        fleet = asyncio.run(
            _scenario(
                Path(directory),
                hosts=scenario.hosts,
                replicas=scenario.replicas,
                max_parallel=scenario.max_parallel,
                canaries=scenario.canaries,
                seed=scenario.seed,
                drain_at=drain_at,
            )
        )
        try:
            revert = fleet.rollout("web")
            assert revert.is_revert and revert.state == controller.SUCCEEDED, revert
            assert fleet.images("web") == ["ozwald/tiny:1"] * scenario.replicas
            assert fleet.unavailable("web") == 0
            [failed] = fleet.events("rollout-reverted")
            assert "no instance became healthy" in failed
            if drain_at is not None:
                drained = fleet.fleet.state.hosts["h1"].host
                assert drained.drain.state == fleet_state_pb2.DRAIN_STATE_COMPLETE
                assert drained.cordoned
                assert [r.id for r in fleet.fleet.state.instances_on("h1")] == []
        finally:
            fleet.fleet.persister.close()
            fleet.store.close()
