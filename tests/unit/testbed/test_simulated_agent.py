"""The simulated agent against a real gRPC server with mutual TLS (link_server.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from ozwald.agent.v1 import plan_pb2
from ozwald.agent.v1 import service_status_pb2 as status_pb2
from ozwald.common.v1 import service_spec_pb2

from ozwald_testbed.sim_pki import FleetPki
from ozwald_testbed.simulated_agent import SimulatedAgent
from ozwald_testbed.simulated_fleet import SimulatedFleet, hosts_from_fixtures
from ozwald_testbed.simulated_hardware import GIB, SimulatedHardware
from ozwald_testbed.simulated_runtime import RuntimeTiming

from .link_server import HostRecord, LinkServicer, link_server

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hardware"
FAST = RuntimeTiming(ready_after_s=0.05, restart_after_s=0.05)
READY = status_pb2.INSTANCE_STATE_READY


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> FleetPki:
    return FleetPki(tmp_path_factory.mktemp("pki"))


@pytest_asyncio.fixture
async def server(pki: FleetPki) -> AsyncIterator[tuple[LinkServicer, str]]:
    async with link_server(pki) as running:
        yield running


def _agent(pki: FleetPki, target: str, host_id: str = "h1", memory_gib: int = 32) -> SimulatedAgent:
    hardware = SimulatedHardware("t", logical_cores=8, memory_total_bytes=memory_gib * GIB)
    return SimulatedAgent(
        host_id,
        hardware,
        target=target,
        credentials=pki.agent(host_id),
        labels={"zone": "a"},
        timing=FAST,
    )


def _spec(name: str, memory_gib: int = 1) -> service_spec_pb2.ServiceSpec:
    spec = service_spec_pb2.ServiceSpec(realm="r", name=name, image="img", variety="cpu")
    spec.resources.memory_bytes = memory_gib * GIB
    return spec


def _ready(host: HostRecord, *names: str) -> bool:
    latest: dict[str, int] = {}
    for report in host.reports:
        for status in report.instances:
            latest[status.name] = status.state
    return all(latest.get(n) == READY for n in names)


@pytest.mark.asyncio
async def test_registers_with_its_profile_and_heartbeats_at_the_given_interval(
    pki: FleetPki, server: tuple[LinkServicer, str]
) -> None:
    link, target = server
    agent = _agent(pki, target)
    agent.start()
    try:
        await agent.wait_connected(5)
        await link.wait_for("h1", lambda h: len(h.heartbeats) >= 3)
        [register] = link.hosts["h1"].registers
        assert register.host_id == "h1"
        assert register.profile.memory.total_bytes == 32 * GIB
        assert register.profile.cpu.usable_cores == 8
        assert dict(register.labels) == {"zone": "a"}
        assert register.applied_assignment_version == 0
        assert agent.heartbeat_interval_s == pytest.approx(0.1)
        sequences = [b.sequence for b in link.hosts["h1"].heartbeats]
        assert sequences[:3] == [1, 2, 3]
    finally:
        await agent.stop()


@pytest.mark.asyncio
async def test_applies_an_assignment_answers_it_and_reports_instances_ready(
    pki: FleetPki, server: tuple[LinkServicer, str]
) -> None:
    link, target = server
    agent = _agent(pki, target)
    agent.start()
    try:
        await agent.wait_connected(5)
        version = link.assign("h1", [_spec("web-0"), _spec("web-1")])
        await link.wait_for("h1", lambda h: _ready(h, "web-0", "web-1"))
        [result] = link.hosts["h1"].results
        assert result.version == version and result.admitted
        assert agent.applied_assignment_version == version
        first = link.hosts["h1"].reports[0]
        assert [s.state for s in first.instances] == [status_pb2.INSTANCE_STATE_STARTING] * 2
        assert first.observed_at.seconds > 0
    finally:
        await agent.stop()


@pytest.mark.asyncio
async def test_a_refused_assignment_carries_the_plan_and_changes_nothing(
    pki: FleetPki, server: tuple[LinkServicer, str]
) -> None:
    link, target = server
    agent = _agent(pki, target, memory_gib=8)
    agent.start()
    try:
        await agent.wait_connected(5)
        first = link.assign("h1", [_spec("a-0", memory_gib=4)])
        await link.wait_for("h1", lambda h: _ready(h, "a-0"))
        link.assign("h1", [_spec("a-0", memory_gib=4), _spec("b-0", memory_gib=6)])
        await link.wait_for("h1", lambda h: len(h.results) == 2)
        refused = link.hosts["h1"].results[1]
        assert not refused.admitted
        [refusal] = refused.plan.refusals
        assert refusal.name == "b-0"
        assert refusal.reason == plan_pb2.REFUSAL_REASON_INSUFFICIENT_MEMORY
        assert agent.applied_assignment_version == first
        assert agent.runtime.names() == ["a-0"]
        # Something else takes the rest; the agent's next profile says nothing is left.
        agent.runtime.occupy_memory(4 * GIB)
        agent.report_profile()
        await link.wait_for("h1", lambda h: len(h.profiles) == 1)
        memory = link.hosts["h1"].profiles[0].profile.memory
        assert memory.total_bytes == 8 * GIB
        assert memory.available_bytes == 0
    finally:
        await agent.stop()


@pytest.mark.asyncio
async def test_a_reconnect_registers_the_applied_version_and_complete_statuses(
    pki: FleetPki, server: tuple[LinkServicer, str]
) -> None:
    link, target = server
    agent = _agent(pki, target)
    agent.start()
    try:
        await agent.wait_connected(5)
        version = link.assign("h1", [_spec("a-0")])
        await link.wait_for("h1", lambda h: _ready(h, "a-0"))
        container = agent.runtime.status("a-0")
        link.drop("h1")
        await link.wait_for("h1", lambda h: len(h.registers) == 2)
        second = link.hosts["h1"].registers[1]
        assert second.applied_assignment_version == version
        assert [(s.name, s.state) for s in second.instances] == [("a-0", READY)]
        # Nothing newer to apply: the server does not resend, and the instance is untouched.
        await asyncio.sleep(0.2)
        assert len(link.hosts["h1"].results) == 1
        assert container is not None
        assert agent.runtime.status("a-0").container_id == container.container_id  # type: ignore[union-attr]
    finally:
        await agent.stop()


@pytest.mark.asyncio
async def test_an_agent_that_dies_and_returns_registers_what_still_runs(
    pki: FleetPki, server: tuple[LinkServicer, str]
) -> None:
    link, target = server
    agent = _agent(pki, target)
    agent.start()
    await agent.wait_connected(5)
    link.assign("h1", [_spec("a-0")])
    await link.wait_for("h1", lambda h: _ready(h, "a-0"))
    await agent.stop()
    agent.start()
    try:
        await link.wait_for("h1", lambda h: len(h.registers) == 2)
        assert [s.name for s in link.hosts["h1"].registers[1].instances] == ["a-0"]
    finally:
        await agent.stop(power_off=True)
    assert agent.runtime.names() == []
    agent.start()
    try:
        # The host rebooted: the agent starts its stored desired set again by itself.
        await link.wait_for("h1", lambda h: len(h.registers) == 3)
        assert [s.name for s in link.hosts["h1"].registers[2].instances] == ["a-0"]
    finally:
        await agent.stop(wipe=True)
    agent.start()
    try:
        await link.wait_for("h1", lambda h: len(h.registers) == 4)
        fourth = link.hosts["h1"].registers[3]
        assert list(fourth.instances) == [] and fourth.applied_assignment_version == 0
        # A reinstalled host has nothing, so the server sends its assignment again.
        await link.wait_for("h1", lambda h: len(h.results) == 2)
    finally:
        await agent.stop()


@pytest.mark.asyncio
async def test_a_partition_silences_heartbeats_and_holds_reports_until_healed(
    pki: FleetPki, server: tuple[LinkServicer, str]
) -> None:
    link, target = server
    agent = _agent(pki, target)
    agent.start()
    try:
        await agent.wait_connected(5)
        link.assign("h1", [_spec("a-0")])
        await link.wait_for("h1", lambda h: _ready(h, "a-0"))
        agent.partition()
        await asyncio.sleep(0.15)
        beats = len(link.hosts["h1"].heartbeats)
        reports = len(link.hosts["h1"].reports)
        agent.runtime.crash("a-0")
        await asyncio.sleep(0.4)
        assert len(link.hosts["h1"].heartbeats) == beats
        assert len(link.hosts["h1"].reports) == reports
        agent.heal()
        await link.wait_for("h1", lambda h: len(h.heartbeats) > beats and len(h.reports) > reports)
        held = link.hosts["h1"].reports[reports]
        # The changes made during the partition arrive coalesced: the latest status of each.
        [status] = held.instances
        assert status.restart_count == 1
        assert len(link.hosts["h1"].registers) == 1
    finally:
        await agent.stop()


@pytest.mark.asyncio
async def test_an_agent_whose_certificate_names_another_host_is_refused(
    pki: FleetPki, server: tuple[LinkServicer, str]
) -> None:
    link, target = server
    hardware = SimulatedHardware("t", logical_cores=2, memory_total_bytes=GIB)
    impostor = SimulatedAgent("h2", hardware, target=target, credentials=pki.agent("h9"))
    impostor.start()
    try:

        async def refused() -> None:
            while impostor.last_error is None:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(refused(), 5)
        assert impostor.last_error is not None
        assert impostor.last_error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert not impostor.connected
        assert "h2" in link.refused
    finally:
        await impostor.stop()


@pytest.mark.asyncio
async def test_a_fleet_from_the_fixtures_registers_every_host(
    pki: FleetPki, server: tuple[LinkServicer, str]
) -> None:
    link, target = server
    fleet = SimulatedFleet(target, pki, timing=FAST)
    fleet.add_all(hosts_from_fixtures(FIXTURES, 12))
    await fleet.start(per_second=200)
    try:
        await fleet.wait_connected(10)
        assert fleet.connected_count() == 12
        gpu_counts = {
            host_id: sum(len(r.devices) for r in rec.registers[0].profile.gpu_vendors)
            for host_id, rec in link.hosts.items()
        }
        assert gpu_counts["sim-0000"] == 8  # nvidia_h100_x8
        assert gpu_counts["sim-0007"] == 0  # cpu_only
        assert link.hosts["sim-0008"].registers[0].labels["fixture"] == "nvidia_h100_x8"
    finally:
        await fleet.stop()
