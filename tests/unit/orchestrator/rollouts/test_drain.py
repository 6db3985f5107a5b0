"""Draining a host on a fake clock: instances move within the disruption budget, the
deadline moves what is left, uncordon cancels."""

from __future__ import annotations

from pathlib import Path

import pytest
from ozwald.common.v1 import error_reason_pb2
from ozwald.orchestrator.v1 import fleet_state_pb2

from ozwald_orchestrator.rpc_errors import OrchestratorError
from tests.unit.orchestrator.fakes import deployment
from tests.unit.orchestrator.rollouts.agents import Fleet3, web

DRAINING = fleet_state_pb2.DRAIN_STATE_RUNNING
COMPLETE = fleet_state_pb2.DRAIN_STATE_COMPLETE
DEADLINE_PASSED = fleet_state_pb2.DRAIN_STATE_DEADLINE_PASSED
CANCELLED = fleet_state_pb2.DRAIN_STATE_CANCELLED
PENDING = fleet_state_pb2.INSTANCE_STATE_PENDING


async def _packed(path: Path, *hosts: str, replicas: int = 4, max_parallel: int = 1) -> Fleet3:
    """`web` packed onto the first host (binpack), everything running."""
    fleet = Fleet3(path)
    fleet.join(hosts[0])
    await fleet.apply(web(replicas, max_parallel=max_parallel))
    for host_id in hosts[1:]:
        fleet.join(host_id)
    await fleet.tick(1)
    assert {r.host_id for r in fleet.fleet.state.instances_of("web")} == {hosts[0]}
    return fleet


def _host(fleet: Fleet3, host_id: str) -> fleet_state_pb2.Host:
    return fleet.fleet.state.hosts[host_id].snapshot()


def _on(fleet: Fleet3, host_id: str) -> list[str]:
    return [r.id for r in fleet.fleet.state.instances_on(host_id)]


@pytest.mark.asyncio
async def test_a_drain_moves_everything_within_max_parallel_and_leaves_the_host_cordoned(
    tmp_path: Path,
) -> None:
    fleet = await _packed(tmp_path, "h1", "h2", "h3")

    host = await fleet.fleet.drain("h1", 600)

    assert host.cordoned and host.drain.state == DRAINING
    assert len(_on(fleet, "h1")) == 3  # one moved at once, the others wait for it
    seen = []
    for _ in range(10):
        await fleet.tick(2)
        seen.append(fleet.unavailable("web"))
        if _host(fleet, "h1").drain.state != DRAINING:
            break
    drained = _host(fleet, "h1")
    assert drained.drain.state == COMPLETE
    assert drained.cordoned and drained.drain.remaining == 0
    assert drained.drain.HasField("finished_at")
    assert _on(fleet, "h1") == []
    assert max(seen) <= 1
    assert fleet.unavailable("web") == 0
    assert len(fleet.events("drain-progress")) == 4
    assert fleet.events("drain-started") == ["draining h1: 4 instance(s) to move, deadline 10 min"]
    assert len(fleet.events("drain-complete")) == 1
    # The agent on h1 was told to stop everything.
    assert list(fleet.fleet.state.hosts["h1"].assignment.services) == []


@pytest.mark.asyncio
async def test_a_drain_moves_max_parallel_at_once(tmp_path: Path) -> None:
    fleet = await _packed(tmp_path, "h1", "h2", replicas=4, max_parallel=2)
    await fleet.fleet.drain("h1", 600)
    assert len(_on(fleet, "h1")) == 2
    assert fleet.unavailable("web") == 2


@pytest.mark.asyncio
async def test_at_the_deadline_what_cannot_move_is_stopped_and_waits(tmp_path: Path) -> None:
    fleet = Fleet3(tmp_path)
    fleet.join("h1")
    await fleet.apply(deployment("solo", 2))
    await fleet.tick(1)

    host = await fleet.fleet.drain("h1", 30)
    await fleet.tick(10)
    assert len(_on(fleet, "h1")) == 2  # no other host: nothing moved, nothing stopped
    assert _host(fleet, "h1").drain.state == DRAINING
    await fleet.tick(25)

    drained = _host(fleet, "h1")
    assert host.drain.remaining == 2
    assert drained.drain.state == DEADLINE_PASSED and drained.drain.remaining == 0
    assert _on(fleet, "h1") == []
    for instance_id in ("solo-0", "solo-1"):
        assert fleet.instance(instance_id).state == PENDING
    [message] = fleet.events("drain-deadline")
    assert "solo-0, solo-1" in message


@pytest.mark.asyncio
async def test_uncordon_cancels_a_drain(tmp_path: Path) -> None:
    fleet = await _packed(tmp_path, "h1", "h2")
    await fleet.fleet.drain("h1", 600)
    host = await fleet.fleet.uncordon("h1")
    assert not host.cordoned
    assert host.drain.state == CANCELLED and host.drain.remaining == 3
    for _ in range(5):
        await fleet.tick(2)
    assert len(_on(fleet, "h1")) == 3  # what had not moved stays


@pytest.mark.asyncio
async def test_draining_an_unknown_host_is_not_found(tmp_path: Path) -> None:
    fleet = Fleet3(tmp_path)
    with pytest.raises(OrchestratorError) as caught:
        await fleet.fleet.drain("nope", 60)
    assert caught.value.reason == error_reason_pb2.ERROR_REASON_HOST_NOT_FOUND


@pytest.mark.asyncio
async def test_a_restarted_orchestrator_continues_the_drain(tmp_path: Path) -> None:
    fleet = await _packed(tmp_path, "h1", "h2")
    await fleet.fleet.drain("h1", 600)
    await fleet.fleet.persister.flush()
    fleet.fleet.persister.close()
    fleet.store.close()

    again = Fleet3(tmp_path, fleet.clock)
    for host_id in ("h1", "h2"):
        again.join(host_id, applied_version=fleet.fleet.state.hosts[host_id].assignment.version)
    assert _host(again, "h1").cordoned
    for _ in range(10):
        await again.tick(2)
    assert _host(again, "h1").drain.state == COMPLETE
    assert _on(again, "h1") == []
