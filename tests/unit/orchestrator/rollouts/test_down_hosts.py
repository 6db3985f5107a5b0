"""Rollouts and drains leave alone the instances of a host that is DOWN (silent, within
the reschedule grace): the host may still run them, out of reach, so a copy started
elsewhere would run twice. They count as unavailable meanwhile; a host that comes back
has them replaced in place, a host that is LOST has them placed elsewhere, with the
deployment's current version."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from ozwald.orchestrator.v1 import deployment_pb2, fleet_state_pb2, rollout_pb2

from ozwald_orchestrator.rollouts import controller
from ozwald_orchestrator.rollouts.budget import Budget
from ozwald_orchestrator.rollouts.controller import Member
from ozwald_orchestrator.sessions import AgentSession
from tests.unit.orchestrator.rollouts.agents import Fleet3, web

HOST_DOWN = fleet_state_pb2.HOST_STATE_DOWN
HOST_LOST = fleet_state_pb2.HOST_STATE_LOST
HOST_READY = fleet_state_pb2.HOST_STATE_READY
DRAINING = fleet_state_pb2.DRAIN_STATE_RUNNING
COMPLETE = fleet_state_pb2.DRAIN_STATE_COMPLETE
SUCCEEDED = rollout_pb2.ROLLOUT_STATE_SUCCEEDED
EPOCH = datetime.datetime(2026, 11, 27, 9, 0, tzinfo=datetime.UTC)


def test_the_controller_never_chooses_an_instance_whose_host_is_down() -> None:
    update = deployment_pb2.UpdateStrategy(max_parallel=3)
    progress = controller.start(
        deployment_pb2.Deployment(name="web", version=2, replicas=3, update=update),
        rollout_id=1,
        from_version=1,
        stable=None,
        now=EPOCH,
    )
    members = [
        Member("web-0", 0, updated=False, available=False, running_since=None, host_down=True),
        Member("web-1", 1, updated=False, available=True, running_since=EPOCH),
        Member("web-2", 2, updated=False, available=True, running_since=EPOCH),
    ]
    # web-0 is unavailable already (1 of 3): two more may go.
    step = controller.step(progress, members, Budget(3, 1), EPOCH, 2)
    assert step.replace == ["web-1", "web-2"]
    assert progress.rollout.available == 0


class Partitioned(Fleet3):
    """Fleet3 whose hosts can fall silent (a partition: the agent runs on) and return."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.cut: dict[str, AgentSession] = {}

    def cut_off(self, host_id: str) -> None:
        self.cut[host_id] = self.sessions.pop(host_id)

    def heal(self, host_id: str) -> None:
        self.sessions[host_id] = self.cut.pop(host_id)

    async def tick(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.heartbeat(*self.sessions)
        self.fleet.check_health()
        self.agents()
        await self.settle()
        self.agents()
        await self.settle()

    def host_state(self, host_id: str) -> fleet_state_pb2.HostState.ValueType:
        return self.fleet.state.hosts[host_id].host.state


async def _mid_rollout(path: Path) -> tuple[Partitioned, str]:
    """web (3 replicas, one per host) rolling out image :2, web-0 replaced; returns the
    fleet and the host of web-2, which still runs version 1."""
    fleet = Partitioned(path)
    for host_id in ("h1", "h2", "h3"):
        fleet.join(host_id)
    # Each replica needs most of a host's cpus: one per host.
    d = web(3)
    d.candidates[0].resources.cpus = 5
    await fleet.apply(d)
    await fleet.tick(1)
    assert fleet.unavailable("web") == 0
    hosts = [r.host_id for r in fleet.fleet.state.instances_of("web")]
    assert len(set(hosts)) == 3
    new = web(3, image="ozwald/tiny:2")
    new.candidates[0].resources.cpus = 5
    await fleet.apply(new)
    assert fleet.versions("web") == [2, 1, 1]
    return fleet, hosts[2]


async def _until_down(fleet: Partitioned, host_id: str) -> None:
    fleet.cut_off(host_id)
    for _ in range(4):
        await fleet.tick(1)
    assert fleet.host_state(host_id) == HOST_DOWN


@pytest.mark.asyncio
async def test_a_rollout_replaces_an_instance_on_a_down_host_in_place_once_it_is_back(
    tmp_path: Path,
) -> None:
    fleet, victim = await _mid_rollout(tmp_path)
    await _until_down(fleet, victim)

    # Down for most of the grace: web-2 stays, and the rollout waits (its one unit of
    # budget is spent on web-2, which is unavailable).
    for _ in range(4):
        await fleet.tick(1)
        assert fleet.host_state(victim) == HOST_DOWN
        web2 = fleet.fleet.state.instances["web-2"]
        assert web2.host_id == victim, web2.instance.reason
        assert web2.instance.deployment_version == 1
    assert fleet.versions("web") == [2, 1, 1]

    fleet.heal(victim)
    for _ in range(20):
        await fleet.tick(5)
        if fleet.rollout("web").state != rollout_pb2.ROLLOUT_STATE_RUNNING:
            break
    assert fleet.rollout("web").state == SUCCEEDED, fleet.rollout("web").reason
    web2 = fleet.fleet.state.instances["web-2"]
    assert web2.host_id == victim and web2.instance.reschedules == 0
    assert fleet.images("web") == ["ozwald/tiny:2"] * 3


@pytest.mark.asyncio
async def test_an_instance_whose_down_host_is_lost_is_placed_with_the_new_version(
    tmp_path: Path,
) -> None:
    fleet, victim = await _mid_rollout(tmp_path)
    fleet.join("h4")  # somewhere for web-2 to go
    await _until_down(fleet, victim)
    for _ in range(6):
        await fleet.tick(1)
        if fleet.host_state(victim) == HOST_LOST:
            break
        assert fleet.fleet.state.instances["web-2"].host_id == victim
    assert fleet.host_state(victim) == HOST_LOST
    web2 = fleet.fleet.state.instances["web-2"]
    assert web2.host_id == "h4"
    assert web2.instance.deployment_version == 2 and web2.instance.reschedules == 1
    assert web2.spec is not None and web2.spec.image == "ozwald/tiny:2"
    for _ in range(20):
        await fleet.tick(5)
        if fleet.rollout("web").state != rollout_pb2.ROLLOUT_STATE_RUNNING:
            break
    assert fleet.rollout("web").state == SUCCEEDED, fleet.rollout("web").reason
    assert fleet.images("web") == ["ozwald/tiny:2"] * 3


@pytest.mark.asyncio
async def test_a_drain_moves_nothing_off_a_down_host_even_past_its_deadline(
    tmp_path: Path,
) -> None:
    fleet = Partitioned(tmp_path)
    fleet.join("h1")
    await fleet.apply(web(4, max_parallel=4))
    fleet.join("h2")
    await fleet.tick(1)
    on_h1 = sorted(r.id for r in fleet.fleet.state.instances_on("h1"))
    assert len(on_h1) == 4
    fleet.cut_off("h1")
    for _ in range(4):
        await fleet.tick(1)
    assert fleet.host_state("h1") == HOST_DOWN

    await fleet.fleet.drain("h1", 2)
    for _ in range(4):
        await fleet.tick(1)
        assert fleet.host_state("h1") == HOST_DOWN
        assert sorted(r.id for r in fleet.fleet.state.instances_on("h1")) == on_h1
        assert fleet.fleet.state.hosts["h1"].host.drain.state == DRAINING
    assert fleet.events("drain-progress") == []

    # LOST: its instances are placed elsewhere as for any lost host; the drain is done.
    for _ in range(3):
        await fleet.tick(1)
    assert fleet.host_state("h1") == HOST_LOST
    assert list(fleet.fleet.state.instances_on("h1")) == []
    assert {r.host_id for r in fleet.fleet.state.instances_of("web")} == {"h2"}
    assert fleet.fleet.state.hosts["h1"].host.drain.state != DRAINING


@pytest.mark.asyncio
async def test_a_drain_goes_on_once_its_down_host_is_back(tmp_path: Path) -> None:
    fleet = Partitioned(tmp_path)
    fleet.join("h1")
    await fleet.apply(web(2, max_parallel=1))
    fleet.join("h2")
    await fleet.tick(1)
    fleet.cut_off("h1")
    for _ in range(4):
        await fleet.tick(1)
    await fleet.fleet.drain("h1", 600)
    await fleet.tick(1)
    assert len(list(fleet.fleet.state.instances_on("h1"))) == 2
    fleet.heal("h1")
    for _ in range(10):
        await fleet.tick(2)
    assert fleet.host_state("h1") == HOST_READY
    assert fleet.fleet.state.hosts["h1"].host.drain.state == COMPLETE
    assert {r.host_id for r in fleet.fleet.state.instances_of("web")} == {"h2"}
