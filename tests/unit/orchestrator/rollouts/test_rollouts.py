"""Rolling updates through the fleet core on a fake clock: agents carry out what they are
sent, and a spec with a `:broken` image never becomes ready."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from ozwald.common.v1 import error_reason_pb2
from ozwald.orchestrator.v1 import rollout_pb2

from ozwald_orchestrator.rpc_errors import OrchestratorError
from tests.unit.orchestrator.rollouts.agents import Fleet3, web

RUNNING = rollout_pb2.ROLLOUT_STATE_RUNNING
PAUSED = rollout_pb2.ROLLOUT_STATE_PAUSED
AWAITING = rollout_pb2.ROLLOUT_STATE_AWAITING_PROMOTION
SUCCEEDED = rollout_pb2.ROLLOUT_STATE_SUCCEEDED
FAILED = rollout_pb2.ROLLOUT_STATE_FAILED
REVERTED = rollout_pb2.ROLLOUT_STATE_REVERTED
SUPERSEDED = rollout_pb2.ROLLOUT_STATE_SUPERSEDED


async def _running(path: Path, replicas: int = 3, **strategy: int | bool) -> Fleet3:
    """Three hosts running `web` version 1 (image :1), everything ready."""
    fleet = Fleet3(path)
    for host_id in ("h1", "h2", "h3"):
        fleet.join(host_id)
    await fleet.apply(web(replicas, **strategy))  # type: ignore[arg-type]
    await fleet.tick(1)
    assert fleet.unavailable("web") == 0
    return fleet


@pytest.mark.asyncio
async def test_a_changed_spec_rolls_out_one_at_a_time_and_succeeds(tmp_path: Path) -> None:
    fleet = await _running(tmp_path)
    hosts_before = [r.host_id for r in fleet.fleet.state.instances_of("web")]

    await fleet.apply(web(image="ozwald/tiny:2"))

    rollout = fleet.rollout("web")
    assert (rollout.id, rollout.from_version, rollout.to_version) == (1, 1, 2)
    assert rollout.state == RUNNING and rollout.promoted
    assert sorted(fleet.versions("web")) == [1, 1, 2]
    assert fleet.unavailable("web") == 1
    seen_unavailable = []
    for _ in range(20):
        await fleet.tick(5)
        seen_unavailable.append(fleet.unavailable("web"))
        if fleet.rollout("web").state != RUNNING:
            break
    rollout = fleet.rollout("web")
    assert rollout.state == SUCCEEDED, rollout.reason
    assert (rollout.desired, rollout.updated, rollout.healthy, rollout.available) == (3, 3, 3, 3)
    assert max(seen_unavailable) <= 1
    assert fleet.images("web") == ["ozwald/tiny:2"] * 3
    # Each instance was replaced where it ran: the new version fits there.
    assert [r.host_id for r in fleet.fleet.state.instances_of("web")] == hosts_before
    assert len(fleet.events("rollout-started")) == 1
    assert len(fleet.events("rollout-succeeded")) == 1
    assert any("healthy on version 2" in m for m in fleet.events("rollout-progress"))


@pytest.mark.asyncio
async def test_max_parallel_replaces_that_many_at_once(tmp_path: Path) -> None:
    fleet = await _running(tmp_path, 4, max_parallel=2)
    await fleet.apply(web(4, image="ozwald/tiny:2", max_parallel=2))
    assert sorted(fleet.versions("web")) == [1, 1, 2, 2]
    assert fleet.unavailable("web") == 2


@pytest.mark.asyncio
async def test_a_replica_count_change_is_not_a_rollout(tmp_path: Path) -> None:
    fleet = await _running(tmp_path)
    await fleet.apply(web(5))
    with pytest.raises(OrchestratorError) as caught:
        fleet.rollout("web")
    assert caught.value.reason == error_reason_pb2.ERROR_REASON_ROLLOUT_NOT_FOUND
    assert caught.value.code == grpc.StatusCode.NOT_FOUND
    assert fleet.versions("web") == [2] * 5


@pytest.mark.asyncio
async def test_scaling_during_a_rollout_moves_it_on_without_a_new_one(tmp_path: Path) -> None:
    fleet = await _running(tmp_path)
    await fleet.apply(web(image="ozwald/tiny:2"))
    await fleet.apply(web(4, image="ozwald/tiny:2"))
    rollout = fleet.rollout("web")
    assert (rollout.id, rollout.to_version, rollout.desired) == (1, 3, 4)
    for _ in range(30):
        await fleet.tick(5)
    assert fleet.rollout("web").state == SUCCEEDED
    assert fleet.images("web") == ["ozwald/tiny:2"] * 4


@pytest.mark.asyncio
async def test_a_version_that_never_becomes_healthy_fails_and_reverts(tmp_path: Path) -> None:
    fleet = await _running(tmp_path, auto_revert=True)
    await fleet.apply(web(image="ozwald/tiny:broken", auto_revert=True))
    for _ in range(30):
        await fleet.tick(10)
        assert fleet.unavailable("web") <= 1
        if fleet.fleet.rollouts.latest("web").rollout.is_revert:  # type: ignore[union-attr]
            break
    failed = fleet.fleet.rollouts.latest("web")
    assert failed is not None and failed.rollout.is_revert
    history = fleet.events("rollout-reverted")
    assert len(history) == 1 and "reverted to version 1's spec as version 3" in history[0]
    assert len(fleet.events("rollout-failed")) == 1
    # Only one instance was ever taken to the broken version.
    for _ in range(30):
        await fleet.tick(10)
    revert = fleet.rollout("web")
    assert revert.state == SUCCEEDED and revert.is_revert and revert.to_version == 3
    assert fleet.images("web") == ["ozwald/tiny:1"] * 3
    assert fleet.fleet.state.deployments["web"].candidates[0].image == "ozwald/tiny:1"


@pytest.mark.asyncio
async def test_without_auto_revert_a_failed_rollout_stops_where_it_was(tmp_path: Path) -> None:
    fleet = await _running(tmp_path)
    await fleet.apply(web(image="ozwald/tiny:broken"))
    for _ in range(20):
        await fleet.tick(10)
    rollout = fleet.rollout("web")
    assert rollout.state == FAILED
    assert "no instance became healthy for 120 s" in rollout.reason
    assert sorted(fleet.images("web")) == ["ozwald/tiny:1", "ozwald/tiny:1", "ozwald/tiny:broken"]
    # An undo goes back to the version the rollout replaced.
    response = await fleet.fleet.undo_rollout("web", 0)
    assert response.deployment.version == 3
    assert response.rollout.is_revert and response.rollout.from_version == 2
    for _ in range(20):
        await fleet.tick(5)
    assert fleet.rollout("web").state == SUCCEEDED
    assert fleet.images("web") == ["ozwald/tiny:1"] * 3


@pytest.mark.asyncio
async def test_pause_stops_replacing_and_resume_continues(tmp_path: Path) -> None:
    fleet = await _running(tmp_path)
    await fleet.apply(web(image="ozwald/tiny:2"))
    paused = await fleet.fleet.pause_rollout("web")
    assert paused.state == PAUSED
    for _ in range(10):
        await fleet.tick(10)
    # The one replaced before the pause became healthy; nothing else was replaced, and a
    # paused rollout does not fail on its progress deadline.
    assert sorted(fleet.versions("web")) == [1, 1, 2]
    assert fleet.rollout("web").state == PAUSED
    assert fleet.rollout("web").healthy == 1
    assert (await fleet.fleet.pause_rollout("web")).state == PAUSED  # idempotent
    resumed = await fleet.fleet.resume_rollout("web")
    assert resumed.state == RUNNING
    for _ in range(20):
        await fleet.tick(5)
    assert fleet.rollout("web").state == SUCCEEDED
    assert len(fleet.events("rollout-paused")) == 1
    assert len(fleet.events("rollout-resumed")) == 1
    with pytest.raises(OrchestratorError) as caught:
        await fleet.fleet.pause_rollout("web")
    assert caught.value.reason == error_reason_pb2.ERROR_REASON_ROLLOUT_NOT_ACTIVE
    assert caught.value.metadata["state"] == "ROLLOUT_STATE_SUCCEEDED"


@pytest.mark.asyncio
async def test_canaries_wait_for_promotion(tmp_path: Path) -> None:
    fleet = await _running(tmp_path, 4, canaries=1)
    await fleet.apply(web(4, image="ozwald/tiny:2", canaries=1))
    assert not fleet.rollout("web").promoted
    with pytest.raises(OrchestratorError):
        await fleet.fleet.promote_rollout("web")  # the canary is not healthy yet
    for _ in range(10):
        await fleet.tick(10)
    rollout = fleet.rollout("web")
    assert rollout.state == AWAITING
    assert sorted(fleet.versions("web")) == [1, 1, 1, 2]
    assert "ozwald rollout promote web" in rollout.reason
    promoted = await fleet.fleet.promote_rollout("web")
    assert promoted.promoted and promoted.state == RUNNING
    for _ in range(20):
        await fleet.tick(5)
    assert fleet.rollout("web").state == SUCCEEDED
    assert fleet.versions("web") == [2] * 4


@pytest.mark.asyncio
async def test_auto_promote_promotes_healthy_canaries(tmp_path: Path) -> None:
    fleet = await _running(tmp_path, 3, canaries=2, auto_promote=True, max_parallel=2)
    await fleet.apply(web(image="ozwald/tiny:2", canaries=2, auto_promote=True, max_parallel=2))
    for _ in range(20):
        await fleet.tick(5)
    assert fleet.rollout("web").state == SUCCEEDED
    assert len(fleet.events("rollout-promoted")) == 1


@pytest.mark.asyncio
async def test_a_newer_apply_supersedes_a_running_rollout(tmp_path: Path) -> None:
    fleet = await _running(tmp_path)
    await fleet.apply(web(image="ozwald/tiny:2"))
    await fleet.tick(1)
    await fleet.apply(web(image="ozwald/tiny:3"))
    assert len(fleet.events("rollout-superseded")) == 1
    rollout = fleet.rollout("web")
    assert (rollout.id, rollout.from_version, rollout.to_version) == (2, 2, 3)
    for _ in range(30):
        await fleet.tick(5)
    assert fleet.rollout("web").state == SUCCEEDED
    assert fleet.images("web") == ["ozwald/tiny:3"] * 3


@pytest.mark.asyncio
async def test_a_restarted_orchestrator_continues_the_rollout(tmp_path: Path) -> None:
    fleet = await _running(tmp_path)
    await fleet.apply(web(image="ozwald/tiny:2"))
    await fleet.tick(5)
    await fleet.tick(11)  # the first is healthy, the second replaced
    before = fleet.rollout("web")
    assert before.healthy == 1 and before.updated == 2
    await fleet.fleet.persister.flush()
    fleet.fleet.persister.close()
    fleet.store.close()

    again = Fleet3(tmp_path, fleet.clock)
    for host_id in ("h1", "h2", "h3"):
        again.join(host_id, applied_version=fleet.fleet.state.hosts[host_id].assignment.version)
    loaded = again.rollout("web")
    assert (loaded.id, loaded.state, loaded.healthy) == (1, RUNNING, 1)
    for _ in range(20):
        await again.tick(5)
    assert again.rollout("web").state == SUCCEEDED
    assert again.images("web") == ["ozwald/tiny:2"] * 3


@pytest.mark.asyncio
async def test_undo_to_a_version_that_was_never_stored_is_not_found(tmp_path: Path) -> None:
    fleet = await _running(tmp_path)
    await fleet.apply(web(image="ozwald/tiny:2"))
    with pytest.raises(OrchestratorError) as caught:
        await fleet.fleet.undo_rollout("web", 9)
    assert caught.value.reason == error_reason_pb2.ERROR_REASON_DEPLOYMENT_NOT_FOUND
    assert "versions: 1, 2" in caught.value.message


@pytest.mark.asyncio
async def test_an_update_strategy_that_cannot_work_is_refused(tmp_path: Path) -> None:
    fleet = Fleet3(tmp_path)
    with pytest.raises(OrchestratorError) as caught:
        await fleet.apply(web(healthy_deadline_s=60, progress_deadline_s=30))
    assert caught.value.reason == error_reason_pb2.ERROR_REASON_DEPLOYMENT_INVALID
    assert "progress_deadline" in caught.value.message
