"""Cordon and uncordon: a cordoned host takes no new instances, keeps what it runs, and
stays cordoned through reconnects, health changes and an orchestrator restart."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from ozwald.common.v1 import error_reason_pb2
from ozwald.orchestrator.v1 import fleet_state_pb2

from ozwald_orchestrator.rpc_errors import OrchestratorError
from tests.unit.orchestrator.fakes import cpu_profile, deployment
from tests.unit.orchestrator.test_fleet import RUNNING, Harness


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def _admit_all(harness: Harness, *host_ids: str) -> None:
    for host_id in host_ids:
        for assignment in harness.assignments(host_id):
            harness.admit(host_id, assignment)


@pytest.mark.asyncio
async def test_a_cordoned_host_keeps_what_runs_and_takes_nothing_new(harness: Harness) -> None:
    harness.join("h1")
    harness.join("h2")
    await harness.apply(deployment("web", 1))
    busy = harness.instance("web-0").host_id
    other = "h2" if busy == "h1" else "h1"
    _admit_all(harness, "h1", "h2")

    host = await harness.fleet.cordon(busy)

    assert host.cordoned
    assert harness.instance("web-0").host_id == busy
    assert harness.instance("web-0").state == RUNNING
    assert harness.sent(busy) == []  # nothing it runs is touched
    # Binpack would fill the busy host first; cordoned, everything new goes elsewhere.
    await harness.fleet.scale("web", 4)
    assert {harness.instance(f"web-{n}").host_id for n in (1, 2, 3)} == {other}
    assert harness.events("host-cordoned") == [
        f"{busy} is cordoned (by an operator): it takes no new instances (it runs 1 now)"
    ]


@pytest.mark.asyncio
async def test_explain_says_a_cordoned_host_is_unschedulable(harness: Harness) -> None:
    harness.join("h1")
    await harness.fleet.cordon("h1")
    await harness.apply(deployment("web", 1))
    assert harness.instance("web-0").host_id == ""
    response = await harness.fleet.explain("web")
    [explanation] = response.instances
    [rejection] = explanation.rejections
    assert rejection.filter == "unschedulable"
    assert "cordoned" in rejection.examples[0]
    assert "ozwald uncordon" in rejection.examples[0]


@pytest.mark.asyncio
async def test_uncordon_lets_waiting_instances_land_there(harness: Harness) -> None:
    harness.join("h1")
    await harness.fleet.cordon("h1")
    await harness.apply(deployment("web", 2))
    assert [harness.instance(i).host_id for i in ("web-0", "web-1")] == ["", ""]

    host = await harness.fleet.uncordon("h1")
    assert not host.cordoned
    await harness.settle()
    assert [harness.instance(i).host_id for i in ("web-0", "web-1")] == ["h1", "h1"]
    assert len(harness.events("host-uncordoned")) == 1


@pytest.mark.asyncio
async def test_cordon_and_uncordon_twice_change_nothing_the_second_time(
    harness: Harness,
) -> None:
    harness.join("h1")
    await harness.fleet.cordon("h1")
    await harness.fleet.cordon("h1")
    assert len(harness.events("host-cordoned")) == 1
    await harness.fleet.uncordon("h1")
    await harness.fleet.uncordon("h1")
    assert len(harness.events("host-uncordoned")) == 1


@pytest.mark.asyncio
async def test_an_unknown_host_is_not_found(harness: Harness) -> None:
    harness.join("h1")
    for call in (harness.fleet.cordon, harness.fleet.uncordon):
        with pytest.raises(OrchestratorError) as raised:
            await call("h9")
        assert raised.value.code == grpc.StatusCode.NOT_FOUND
        assert raised.value.reason == error_reason_pb2.ERROR_REASON_HOST_NOT_FOUND
        assert raised.value.metadata == {"host_id": "h9"}
        assert "h1" in raised.value.message


@pytest.mark.asyncio
async def test_the_cordon_holds_through_a_reconnect_a_new_profile_and_down_then_ready(
    harness: Harness,
) -> None:
    harness.join("h1")
    await harness.fleet.cordon("h1")
    harness.join("h1")  # the agent restarted and registered again
    record = harness.fleet.state.hosts["h1"]
    harness.fleet.profile_reported(record, cpu_profile(cores=16))
    harness.clock.advance(4)
    harness.fleet.check_health()  # silent past the TTL: down
    harness.heartbeat("h1")  # and back: ready
    assert record.host.cordoned
    await harness.apply(deployment("web", 1))
    assert harness.instance("web-0").host_id == ""


@pytest.mark.asyncio
async def test_the_cordon_survives_an_orchestrator_restart(tmp_path: Path) -> None:
    first = Harness(tmp_path)
    first.join("h1")
    first.join("h2")
    await first.fleet.cordon("h1")
    first.store.close()

    second = Harness(tmp_path, first.clock)
    assert second.fleet.hosts()[0].cordoned
    await second.apply(deployment("web", 2))
    assert {second.instance(i).host_id for i in ("web-0", "web-1")} == {"h2"}
    second.join("h1")
    second.join("h2")
    await second.fleet.scale("web", 3)
    assert second.instance("web-2").host_id == "h2"


@pytest.mark.asyncio
async def test_explain_says_an_instance_on_a_cordoned_host_stays_there(harness: Harness) -> None:
    harness.join("h1")
    await harness.apply(deployment("web", 1))
    await harness.fleet.cordon("h1")
    [explanation] = (await harness.fleet.explain("web")).instances
    assert explanation.host_id == "h1"
    assert explanation.summary.startswith(
        "web-0 runs on h1, which would not take it now (unschedulable: cordoned"
    )
    assert harness.instance("web-0").host_id == "h1"


@pytest.mark.asyncio
async def test_uncordon_cancels_a_running_drain(harness: Harness) -> None:
    harness.join("h1")
    await harness.apply(deployment("web", 1))
    drained = await harness.fleet.drain("h1", 600)
    assert drained.cordoned
    assert drained.drain.state == fleet_state_pb2.DRAIN_STATE_RUNNING  # no other host

    host = await harness.fleet.uncordon("h1")
    assert not host.cordoned
    assert host.drain.state == fleet_state_pb2.DRAIN_STATE_CANCELLED
    assert harness.instance("web-0").host_id == "h1"
