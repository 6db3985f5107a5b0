"""Failure scenarios on the simulated testbed: the real orchestrator, twelve simulated hosts.

Timeouts here are generous bounds on behaviour (a host must go down at all, instances must
move at all); how fast is measured by bench/fail_converge.py, not asserted.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from ozwald.common.v1 import error_reason_pb2
from ozwald.orchestrator.v1 import fleet_state_pb2

from ozwald_sdk.metadata import reason_name
from ozwald_testbed.simulated_agent import SimulatedAgent
from ozwald_testbed.simulated_hardware import GIB, SimulatedHardware
from tests.integration.fleet_sim.conftest import HOSTS, SETTINGS
from tests.integration.fleet_sim.simbed import (
    HOST_DOWN,
    HOST_LOST,
    HOST_READY,
    RUNNING,
    SimBed,
    cpu_deployment,
    gpu_deployment,
)

pytestmark = pytest.mark.integration

TTL = SETTINGS.heartbeat_ttl_s
GRACE = SETTINGS.reschedule_grace_s
# Slack for a shared 2-core machine on top of the orchestrator's own timers.
SLACK = 10.0


async def _deploy(bed: SimBed) -> None:
    await bed.apply([cpu_deployment("web", 6), gpu_deployment("llm", 2, vram_gib=20, model="H100")])
    await bed.wait_all_running("web", 6)
    await bed.wait_all_running("llm", 2)


@pytest.mark.asyncio
async def test_a_failed_host_goes_down_then_lost_and_its_instances_run_elsewhere(
    simbed: SimBed,
) -> None:
    await _deploy(simbed)
    placements = await simbed.placements()
    victim = placements["web-0"]
    moved = sorted(i for i, h in placements.items() if h == victim)
    await simbed.fleet[victim].stop(power_off=True)

    await simbed.wait_host_state(victim, HOST_DOWN, TTL + SLACK)
    # Within the grace the instances stay where they were: the host may come back.
    during = {i.id: i for i in await simbed.instances()}
    for instance_id in moved:
        assert during[instance_id].host_id == victim
        assert during[instance_id].state == fleet_state_pb2.INSTANCE_STATE_HOST_DOWN

    await simbed.wait_host_state(victim, HOST_LOST, GRACE + SLACK)
    await simbed.wait_all_running("web", 6)
    await simbed.wait_all_running("llm", 2)
    after = {i.id: i for i in await simbed.instances()}
    for instance_id in moved:
        assert after[instance_id].host_id not in ("", victim)
        assert after[instance_id].reschedules >= 1
    web_hosts = [i.host_id for i in after.values() if i.deployment == "web"]
    assert len(set(web_hosts)) == 6, "spread_across_hosts still holds after the move"
    assert simbed.duplicates() == {}

    # The host returns: it restarts what it ran, is told it no longer runs it, stops it.
    simbed.fleet[victim].start()

    async def victim_empty() -> bool:
        return simbed.fleet[victim].runtime.names() == []

    await simbed.wait_host_state(victim, HOST_READY, SLACK)
    await simbed.wait_until(f"{victim} stops what moved away", victim_empty, SLACK)
    assert simbed.duplicates() == {}
    assert {i.id: i.host_id for i in await simbed.instances()} == {
        i: a.host_id for i, a in after.items()
    }


@pytest.mark.asyncio
async def test_a_partition_shorter_than_the_grace_moves_nothing(simbed: SimBed) -> None:
    await _deploy(simbed)
    before = await simbed.placements()
    containers = simbed.container_ids()
    isolated = sorted(set(before.values()))[:2]
    for host_id in isolated:
        simbed.fleet[host_id].partition()
    for host_id in isolated:
        await simbed.wait_host_state(host_id, HOST_DOWN, TTL + SLACK)
    for host_id in isolated:
        simbed.fleet[host_id].heal()
    for host_id in isolated:
        await simbed.wait_host_state(host_id, HOST_READY, SLACK)
    await simbed.wait_all_running("web", 6)
    await simbed.wait_all_running("llm", 2)

    after = await simbed.instances()
    assert {i.id: i.host_id for i in after} == before
    assert all(i.reschedules == 0 for i in after)
    assert simbed.container_ids() == containers, "no container was restarted or moved"
    assert all(h.state == HOST_READY for h in (await simbed.hosts()).values())


@pytest.mark.asyncio
async def test_an_agent_restart_resumes_without_duplicating_anything(simbed: SimBed) -> None:
    await _deploy(simbed)
    before = await simbed.placements()
    containers = simbed.container_ids()
    restarted = sorted(set(before.values()))[:3]
    for host_id in restarted:
        await simbed.fleet[host_id].stop()
    for host_id in restarted:
        simbed.fleet[host_id].start()
    await simbed.fleet.wait_connected(SLACK)
    hosts = await simbed.hosts()
    for host_id in restarted:
        assert simbed.fleet[host_id].sessions == 2
        assert hosts[host_id].state == HOST_READY
        assert hosts[host_id].applied_assignment_version == hosts[host_id].assignment_version
    await asyncio.sleep(1.0)  # room for any wrong assignment to arrive and be acted on
    assert await simbed.placements() == before
    assert simbed.container_ids() == containers
    assert simbed.duplicates() == {}


@pytest.mark.asyncio
async def test_a_sigkilled_orchestrator_restarts_with_the_same_state_and_moves_nothing(
    simbed: SimBed,
) -> None:
    await _deploy(simbed)
    deployments_before = await simbed.call(simbed.client.list_deployments)
    before = await simbed.placements()
    containers = simbed.container_ids()

    await asyncio.to_thread(simbed.orchestrator.restart, kill=True)

    async def all_back() -> bool:
        hosts = await simbed.hosts()
        return len(hosts) == HOSTS and all(
            h.connected and h.state == HOST_READY for h in hosts.values()
        )

    await simbed.wait_until("every agent reconnected", all_back, SLACK + 10)
    await simbed.wait_all_running("web", 6)
    await simbed.wait_all_running("llm", 2)
    deployments_after = await simbed.call(simbed.client.list_deployments)
    assert [(d.name, d.version, d.replicas) for d in deployments_after.deployments] == [
        (d.name, d.version, d.replicas) for d in deployments_before.deployments
    ]
    assert await simbed.placements() == before
    assert simbed.container_ids() == containers
    assert simbed.duplicates() == {}
    assert all(i.reschedules == 0 for i in await simbed.instances())


@pytest.mark.asyncio
async def test_crashed_and_unhealthy_instances_are_restarted_by_their_agent_and_reported(
    simbed: SimBed,
) -> None:
    await _deploy(simbed)
    before = await simbed.placements()
    simbed.fleet[before["web-1"]].runtime.crash("web-1", exit_code=139)
    simbed.fleet[before["web-2"]].runtime.turn_unhealthy("web-2")

    async def reported() -> bool:
        found = {i.id: i for i in await simbed.instances("web")}
        crashed, unhealthy = found["web-1"], found["web-2"]
        return (
            crashed.agent_status.restart_count == 1
            and crashed.agent_status.last_exit_code == 139
            and crashed.state == RUNNING
            and unhealthy.agent_status.restart_count == 1
            and unhealthy.state == RUNNING
        )

    await simbed.wait_until("both restarts reported", reported, SLACK)
    assert await simbed.placements() == before, "a restart on the host moves nothing"
    assert simbed.duplicates() == {}


@pytest.mark.asyncio
async def test_an_instance_that_keeps_failing_on_its_host_is_placed_elsewhere(
    simbed: SimBed,
) -> None:
    await simbed.apply([cpu_deployment("flaky", 1, restart_retries=2)])
    await simbed.wait_all_running("flaky", 1)
    first_host = (await simbed.placements())["flaky-0"]
    # Its container now exits after every start there: the agent gives up (FAILED).
    runtime = simbed.fleet[first_host].runtime
    runtime.crash_loop_on_start("flaky-0")
    runtime.crash("flaky-0", loop=True)

    async def elsewhere() -> bool:
        [instance] = await simbed.instances("flaky")
        return instance.state == RUNNING and instance.host_id not in ("", first_host)

    await simbed.wait_until("flaky-0 running on another host", elsewhere, SLACK + 5)
    [instance] = await simbed.instances("flaky")
    assert instance.reschedules >= 1
    assert simbed.duplicates() == {}


@pytest.mark.asyncio
async def test_an_assignment_the_agent_refuses_is_placed_elsewhere(simbed: SimBed) -> None:
    await simbed.apply([cpu_deployment("api", 2)])
    await simbed.wait_all_running("api", 2)
    placements = await simbed.placements()
    refusing = placements["api-0"]
    agent = simbed.fleet[refusing]
    # Something outside Ozwald now takes all of that host's memory: admission refuses any
    # new claim there, although the profile the orchestrator placed against had room.
    agent.runtime.occupy_memory(agent.hardware.memory_total_bytes)
    await simbed.apply([cpu_deployment("api", 2, environment={"MODEL": "v2"})])

    async def moved() -> bool:
        found = {i.id: i for i in await simbed.instances("api")}
        zero = found.get("api-0")
        return (
            zero is not None
            and zero.state == RUNNING
            and zero.host_id not in ("", refusing)
            and zero.agent_status.fingerprint != ""
            and all(i.state == RUNNING for i in found.values())
        )

    await simbed.wait_until("api-0 placed on a host that admits it", moved, SLACK + 5)
    assert agent.refusals_sent >= 1
    events = await simbed.call(lambda: list(simbed.client.watch_events(follow=False)))
    assert any(e.kind == "assignment-refused" and e.host_id == refusing for e in events)

    async def refusing_host_stopped_it() -> bool:
        return "api-0" not in agent.runtime.names()

    await simbed.wait_until(f"{refusing} stops api-0", refusing_host_stopped_it, SLACK)
    assert simbed.duplicates() == {}


@pytest.mark.asyncio
async def test_agents_with_a_foreign_or_mismatched_certificate_are_refused(
    simbed: SimBed,
) -> None:
    hardware = SimulatedHardware("intruder", logical_cores=8, memory_total_bytes=64 * GIB)
    mismatched = SimulatedAgent(
        "intruder",
        hardware,
        target=simbed.orchestrator.target,
        credentials=simbed.fleet.pki.agent("sim-0001"),
    )
    foreign = SimulatedAgent(
        "stranger",
        hardware,
        target=simbed.orchestrator.target,
        credentials=simbed.fleet.pki.foreign_agent("stranger"),
    )
    mismatched.start()
    foreign.start()
    try:

        async def both_failed() -> bool:
            return mismatched.last_error is not None and foreign.last_error is not None

        await simbed.wait_until("both streams refused", both_failed, SLACK)
        assert mismatched.last_error is not None and foreign.last_error is not None
        assert mismatched.last_error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert _error_reason(mismatched.last_error) == reason_name(
            error_reason_pb2.ERROR_REASON_HOST_IDENTITY_MISMATCH
        )
        # A certificate from another CA fails the TLS handshake: no stream at all.
        assert foreign.last_error.code() == grpc.StatusCode.UNAVAILABLE
        hosts = await simbed.hosts()
        assert "intruder" not in hosts and "stranger" not in hosts
        assert not mismatched.connected and not foreign.connected
    finally:
        await mismatched.stop()
        await foreign.stop()


def _error_reason(error: grpc.aio.AioRpcError) -> str:
    """The reason of the "ozwald" ErrorInfo the server put in the call's status."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            for detail in status_pb2.Status.FromString(value).details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return info.reason
    return ""
