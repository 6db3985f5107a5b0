"""Scaling a deployment: a new version that changes only the replica count, through
placement, stored and evented; not a rollout, and 0 keeps the deployment."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from ozwald.common.v1 import error_reason_pb2
from ozwald.orchestrator.v1 import fleet_state_pb2, placement_pb2

from ozwald_orchestrator.rpc_errors import OrchestratorError
from tests.unit.orchestrator.fakes import deployment
from tests.unit.orchestrator.test_fleet import RUNNING, Harness

PENDING = fleet_state_pb2.INSTANCE_STATE_PENDING


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


@pytest.mark.asyncio
async def test_scaling_up_places_new_instances_and_leaves_running_ones_alone(
    harness: Harness,
) -> None:
    harness.join("h1")
    harness.join("h2")
    await harness.apply(deployment("web", 2, cpus=3))
    for host_id in ("h1", "h2"):
        for assignment in harness.assignments(host_id):
            harness.admit(host_id, assignment)
    before = {i: harness.instance(i).host_id for i in ("web-0", "web-1")}
    assert all(harness.instance(i).state == RUNNING for i in before)

    response = await harness.fleet.scale("web", 4)

    assert response.deployment.replicas == 4
    assert response.deployment.version == 2
    [change] = response.plan.changes
    assert change.kind == placement_pb2.DEPLOYMENT_CHANGE_KIND_UPDATE
    assert list(change.changed_fields) == ["replicas"]
    placed = {p.instance: p.host_id for p in change.instances}
    assert sorted(placed) == ["web-0", "web-1", "web-2", "web-3"]
    assert all(placed.values())
    # The instances that ran keep running where they were: a scale is not a rollout.
    for instance_id, host_id in before.items():
        assert harness.instance(instance_id).host_id == host_id
        assert harness.instance(instance_id).state == RUNNING
    assert harness.instance("web-2").deployment_version == 2
    assert harness.fleet.rollouts.latest("web") is None, "a scale is not a rollout"
    assert harness.events("deployment-scaled") == [
        "web scaled from 2 to 4 replica(s): version 2 (desired-state version 2)"
    ]
    stored = harness.store.load()
    assert [d.replicas for d in stored.deployments] == [4]
    assert [v.summary for v in harness.store.desired_versions()] == [
        "create web",
        "scale web 2 -> 4",
    ]
    history = harness.store.deployment_history("web")
    assert [(r.deployment.version, r.deployment.replicas) for r in history] == [(1, 2), (2, 4)]


@pytest.mark.asyncio
async def test_scaling_down_removes_the_highest_ordinals_first(harness: Harness) -> None:
    harness.join("h1")
    await harness.apply(deployment("web", 4))
    await harness.fleet.scale("web", 1)
    assert sorted(harness.fleet.state.instances) == ["web-0"]
    *_, last = harness.assignments("h1")
    assert [s.name for s in last.services] == ["web-0"]
    assert sorted(i.id for i in harness.store.load().instances) == ["web-0"]


@pytest.mark.asyncio
async def test_scaling_to_zero_keeps_the_deployment_and_scaling_back_places_again(
    harness: Harness,
) -> None:
    harness.join("h1")
    await harness.apply(deployment("web", 2))
    response = await harness.fleet.scale("web", 0)
    assert response.deployment.replicas == 0
    assert [list(c.instances) for c in response.plan.changes] == [[]]
    assert harness.fleet.state.instances == {}
    assert list(harness.assignments("h1")[-1].services) == []
    # Still there, stored, with its candidates: only the count is 0.
    assert harness.fleet.deployment("web").replicas == 0
    assert [d.name for d in harness.store.load().deployments] == ["web"]

    await harness.fleet.scale("web", 2)
    assert sorted(harness.fleet.state.instances) == ["web-0", "web-1"]
    assert all(harness.instance(i).host_id == "h1" for i in ("web-0", "web-1"))
    assert harness.fleet.deployment("web").version == 3


@pytest.mark.asyncio
async def test_scaling_to_the_same_count_stores_nothing(harness: Harness) -> None:
    harness.join("h1")
    await harness.apply(deployment("web", 2))
    harness.sent("h1")
    response = await harness.fleet.scale("web", 2)
    assert response.deployment.version == 1
    assert [c.kind for c in response.plan.changes] == [
        placement_pb2.DEPLOYMENT_CHANGE_KIND_UNCHANGED
    ]
    assert response.plan.desired_version == 1
    assert len(harness.store.desired_versions()) == 1
    assert harness.sent("h1") == []
    assert harness.events("deployment-scaled") == []


@pytest.mark.asyncio
async def test_instances_no_host_can_take_wait_pending_with_the_reason(harness: Harness) -> None:
    harness.join("h1")
    await harness.apply(deployment("web", 2, cpus=3))
    response = await harness.fleet.scale("web", 3)
    [change] = response.plan.changes
    waiting = [p for p in change.instances if not p.host_id]
    assert [p.instance for p in waiting] == ["web-2"]
    assert "cpu" in waiting[0].reason
    assert harness.instance("web-2").state == PENDING


@pytest.mark.asyncio
async def test_an_unknown_deployment_is_not_found(harness: Harness) -> None:
    await harness.apply(deployment("web", 1))
    with pytest.raises(OrchestratorError) as raised:
        await harness.fleet.scale("wbe", 3)
    assert raised.value.code == grpc.StatusCode.NOT_FOUND
    assert raised.value.reason == error_reason_pb2.ERROR_REASON_DEPLOYMENT_NOT_FOUND
    assert "web" in raised.value.message


@pytest.mark.asyncio
async def test_past_the_replica_limit_is_refused_and_nothing_changes(harness: Harness) -> None:
    await harness.apply(deployment("web", 1))
    with pytest.raises(OrchestratorError) as raised:
        await harness.fleet.scale("web", 1001)
    assert raised.value.reason == error_reason_pb2.ERROR_REASON_DEPLOYMENT_INVALID
    assert "1000" in raised.value.message
    assert harness.fleet.deployment("web").replicas == 1
    assert len(harness.store.desired_versions()) == 1


@pytest.mark.asyncio
async def test_a_scaled_deployment_survives_a_restart_and_apply_continues_its_versions(
    tmp_path: Path,
) -> None:
    first = Harness(tmp_path)
    first.join("h1")
    await first.apply(deployment("web", 1))
    await first.fleet.scale("web", 3)
    first.store.close()

    second = Harness(tmp_path, first.clock)
    assert second.fleet.deployment("web").replicas == 3
    assert sorted(second.fleet.state.instances) == ["web-0", "web-1", "web-2"]
    # The file says 1: applying it sets the count back, as a new version.
    response = await second.apply(deployment("web", 1))
    assert list(response.plan.changes[0].changed_fields) == ["replicas"]
    assert second.fleet.deployment("web").version == 3
