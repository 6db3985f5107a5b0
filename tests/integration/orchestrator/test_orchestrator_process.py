"""The real ozwald-orchestrator process with two scripted agents over mutual TLS.

No Docker: the agents are FakeAgents speaking AgentLinkService; the orchestrator is the
real process (its store, its listeners, its timers), restarted and killed for real.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import pytest
from ozwald.orchestrator.v1 import (
    agent_link_service_pb2,
    agent_link_service_pb2_grpc,
    fleet_service_pb2,
    fleet_service_pb2_grpc,
    fleet_state_pb2,
    placement_pb2,
)

from tests.integration.orchestrator.fake_agent import FakeAgent
from tests.integration.orchestrator.orchestrator_process import (
    HEARTBEAT_S,
    TIMING,
    FleetStub,
    Pki,
    RunningOrchestrator,
    start_orchestrator,
)
from tests.integration.orchestrator.wire import error_info, web

pytestmark = pytest.mark.integration


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 10.0, what: str = "condition"
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if await check():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        await asyncio.sleep(0.05)


async def instances(
    fleet: FleetStub,
) -> dict[str, fleet_state_pb2.Instance]:
    response = await fleet.ListInstances(fleet_service_pb2.ListInstancesRequest(), timeout=5)
    return {i.id: i for i in response.instances}


async def host_state(fleet: FleetStub, host_id: str) -> int:
    response = await fleet.ListHosts(fleet_service_pb2.ListHostsRequest(), timeout=5)
    return int(next(h.state for h in response.hosts if h.id == host_id))


async def agents(orchestrator: RunningOrchestrator, pki: Pki, *names: str) -> list[FakeAgent]:
    joined = []
    for name in names:
        agent = FakeAgent(
            name,
            orchestrator.tcp_target,
            pki.credentials(name, "agent"),
            heartbeat_interval=HEARTBEAT_S,
        )
        await agent.connect()
        joined.append(agent)
    return joined


@pytest.mark.asyncio
async def test_an_instance_runs_and_moves_when_its_host_is_lost(
    orchestrator: RunningOrchestrator, pki: Pki, fleet: FleetStub
) -> None:
    h1, h2 = await agents(orchestrator, pki, "h1", "h2")
    applied = await fleet.ApplyDeployments(
        fleet_service_pb2.ApplyDeploymentsRequest(deployments=[web()]), timeout=10
    )
    [change] = applied.plan.changes
    [placed] = change.instances
    assert placed.instance == "web-0" and placed.host_id in ("h1", "h2")
    first, other = (h1, h2) if placed.host_id == "h1" else (h2, h1)

    assignment = await first.next_assignment()
    assert [s.name for s in assignment.services] == ["web-0"]
    first.admit(assignment)

    async def running_on_first() -> bool:
        found = (await instances(fleet)).get("web-0")
        return found is not None and found.state == fleet_state_pb2.INSTANCE_STATE_RUNNING

    await eventually(running_on_first, what="web-0 running")

    first.heartbeats_paused = True

    async def first_down() -> bool:
        return await host_state(fleet, first.host_id) == fleet_state_pb2.HOST_STATE_DOWN

    await eventually(first_down, what=f"{first.host_id} down")
    assert (await instances(fleet))["web-0"].state == fleet_state_pb2.INSTANCE_STATE_HOST_DOWN

    moved = await other.next_assignment(timeout=10)
    assert [s.name for s in moved.services] == ["web-0"]
    assert await host_state(fleet, first.host_id) == fleet_state_pb2.HOST_STATE_LOST
    instance = (await instances(fleet))["web-0"]
    assert instance.host_id == other.host_id
    assert instance.reschedules == 1
    other.admit(moved)

    async def running_on_other() -> bool:
        found = (await instances(fleet))["web-0"]
        return (
            found.host_id == other.host_id and found.state == fleet_state_pb2.INSTANCE_STATE_RUNNING
        )

    await eventually(running_on_other, what="web-0 running elsewhere")

    # The lost host comes back: it gets an assignment without the instance that moved.
    first.heartbeats_paused = False
    emptied = await first.next_assignment()
    assert list(emptied.services) == []
    for agent in (h1, h2):
        await agent.close()


@pytest.mark.asyncio
async def test_a_host_back_within_the_grace_moves_nothing(
    orchestrator: RunningOrchestrator, pki: Pki, fleet: FleetStub
) -> None:
    h1, h2 = await agents(orchestrator, pki, "h1", "h2")
    applied = await fleet.ApplyDeployments(
        fleet_service_pb2.ApplyDeploymentsRequest(deployments=[web()]), timeout=10
    )
    host_id = applied.plan.changes[0].instances[0].host_id
    first, other = (h1, h2) if host_id == "h1" else (h2, h1)
    first.admit(await first.next_assignment())

    async def running() -> bool:
        return (await instances(fleet))["web-0"].state == fleet_state_pb2.INSTANCE_STATE_RUNNING

    await eventually(running, what="web-0 running")

    # The agent restarts: its stream ends, it is silent past the TTL, then it registers
    # again (within the grace) with what it applied and what it runs.
    await first.close()

    async def down() -> bool:
        return await host_state(fleet, first.host_id) == fleet_state_pb2.HOST_STATE_DOWN

    await eventually(down, what="host down")
    await first.connect()

    async def ready() -> bool:
        return await host_state(fleet, first.host_id) == fleet_state_pb2.HOST_STATE_READY

    await eventually(ready, what="host ready again")
    await eventually(running, what="web-0 running again")
    # Past the grace nothing moved: no assignment for either host, same placement.
    await asyncio.sleep(2.0)
    assert first.assignments.empty() and other.assignments.empty()
    instance = (await instances(fleet))["web-0"]
    assert instance.host_id == first.host_id and instance.reschedules == 0
    for agent in (h1, h2):
        await agent.close()


@pytest.mark.asyncio
async def test_a_killed_orchestrator_restarts_with_the_same_deployments_and_placements(
    workdir: Path, pki: Pki
) -> None:
    orchestrator = start_orchestrator(workdir, pki, TIMING)
    try:
        h1, h2 = await agents(orchestrator, pki, "h1", "h2")
        async with grpc.aio.insecure_channel(orchestrator.unix_target) as channel:
            fleet = fleet_service_pb2_grpc.FleetServiceStub(channel)
            await fleet.ApplyDeployments(
                fleet_service_pb2.ApplyDeploymentsRequest(deployments=[web(3)]), timeout=10
            )
            for agent in (h1, h2):
                with pytest.raises(asyncio.TimeoutError):
                    while True:
                        agent.admit(await agent.next_assignment(timeout=1.0))
            before = await instances(fleet)
            deployments_before = await fleet.ListDeployments(
                fleet_service_pb2.ListDeploymentsRequest(), timeout=5
            )
        assert sorted(before) == ["web-0", "web-1", "web-2"]
        assert all(i.host_id for i in before.values())

        orchestrator.kill()
        for agent in (h1, h2):
            await agent.close()
        orchestrator = start_orchestrator(workdir, pki, TIMING, port=orchestrator.port)
        for agent in (h1, h2):
            agent.target = orchestrator.tcp_target
            await agent.connect()
        async with grpc.aio.insecure_channel(orchestrator.unix_target) as channel:
            fleet = fleet_service_pb2_grpc.FleetServiceStub(channel)
            after = await instances(fleet)
            deployments_after = await fleet.ListDeployments(
                fleet_service_pb2.ListDeploymentsRequest(), timeout=5
            )
            assert list(deployments_after.deployments) == list(deployments_before.deployments)
            assert {i: r.host_id for i, r in after.items()} == {
                i: r.host_id for i, r in before.items()
            }
            # The agents had applied the current assignments: nothing is sent again, and
            # applying the same deployments again changes nothing.
            again = await fleet.ApplyDeployments(
                fleet_service_pb2.ApplyDeploymentsRequest(deployments=[web(3)]), timeout=10
            )
            assert [c.kind for c in again.plan.changes] == [
                placement_pb2.DEPLOYMENT_CHANGE_KIND_UNCHANGED
            ]
            assert again.plan.desired_version == 1
            await asyncio.sleep(1.0)
            assert h1.assignments.empty() and h2.assignments.empty()
            running = [name for agent in (h1, h2) for name in agent.running]
            assert sorted(running) == ["web-0", "web-1", "web-2"]
        for agent in (h1, h2):
            await agent.close()
    finally:
        if orchestrator.process.poll() is None:
            assert orchestrator.terminate() == 0, orchestrator.logs()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("certificate_name", "role"),
    [("h1", "operator"), ("h9", "agent"), ("h1", "")],
    ids=["operator-certificate", "other-host-certificate", "no-role"],
)
async def test_an_agent_cannot_register_under_another_identity(
    orchestrator: RunningOrchestrator, pki: Pki, certificate_name: str, role: str
) -> None:
    agent = FakeAgent("h1", orchestrator.tcp_target, pki.credentials(certificate_name, role))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await agent.connect()
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(refused.value).reason == "HOST_IDENTITY_MISMATCH"
    await agent.close()


@pytest.mark.asyncio
async def test_fleet_service_over_tcp_takes_operators_only(
    orchestrator: RunningOrchestrator, pki: Pki
) -> None:
    for role, allowed in (("operator", True), ("agent", False)):
        async with grpc.aio.secure_channel(
            orchestrator.tcp_target,
            pki.credentials("alice", role),
            options=[("grpc.ssl_target_name_override", "localhost")],
        ) as channel:
            stub = fleet_service_pb2_grpc.FleetServiceStub(channel)
            call = stub.ListHosts(fleet_service_pb2.ListHostsRequest(), timeout=5)
            if allowed:
                await call
            else:
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await call
                assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.asyncio
async def test_a_newer_stream_for_a_host_replaces_the_older(
    orchestrator: RunningOrchestrator, pki: Pki, fleet: FleetStub
) -> None:
    [older] = await agents(orchestrator, pki, "h1")
    [newer] = await agents(orchestrator, pki, "h1")

    async def older_ended() -> bool:
        return older.ended is not None

    # The older stream ends at its next message (a heartbeat), with the reason.
    await eventually(older_ended, what="the older stream ended")
    assert older.ended is not None and older.ended.code() == grpc.StatusCode.ABORTED
    assert "replaced by a newer stream" in (older.ended.details() or "")
    await asyncio.sleep(3 * HEARTBEAT_S)
    hosts = (await fleet.ListHosts(fleet_service_pb2.ListHostsRequest(), timeout=5)).hosts
    assert [(h.id, h.connected, h.state) for h in hosts] == [
        ("h1", True, fleet_state_pb2.HOST_STATE_READY)
    ]
    assert hosts[0].address.startswith("127.0.0.1:")
    for agent in (older, newer):
        await agent.close()


@pytest.mark.asyncio
async def test_a_stream_must_begin_with_register(
    orchestrator: RunningOrchestrator, pki: Pki
) -> None:
    async with grpc.aio.secure_channel(
        orchestrator.tcp_target,
        pki.credentials("h1", "agent"),
        options=[("grpc.ssl_target_name_override", "localhost")],
    ) as channel:
        call = agent_link_service_pb2_grpc.AgentLinkServiceStub(channel).Connect()
        await call.write(
            agent_link_service_pb2.ConnectRequest(
                heartbeat=agent_link_service_pb2.Heartbeat(sequence=1)
            )
        )
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call.read()
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(refused.value).reason == "INVALID_ARGUMENT"
