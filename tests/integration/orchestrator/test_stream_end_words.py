"""Why an agent's stream ended, as the host-disconnected event tells it: the agent ended
it, its process went away, or its host fell silent and the connection was dropped."""

from __future__ import annotations

import asyncio

import pytest
from ozwald.orchestrator.v1 import fleet_service_pb2

from tests.integration.orchestrator.fake_agent import FakeAgent
from tests.integration.orchestrator.orchestrator_process import (
    HEARTBEAT_S,
    FleetStub,
    Pki,
    RunningOrchestrator,
)

pytestmark = pytest.mark.integration


async def _disconnected(fleet: FleetStub, host: str) -> str:
    for _ in range(100):
        call = fleet.WatchEvents(
            fleet_service_pb2.WatchEventsRequest(after_sequence=0, stored_only=True), timeout=5
        )
        messages = [
            r.event.message
            async for r in call
            if r.event.kind == "host-disconnected" and r.event.host_id == host
        ]
        if messages:
            return messages[-1]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no host-disconnected event for {host}")


async def _joined(orchestrator: RunningOrchestrator, pki: Pki) -> FakeAgent:
    agent = FakeAgent(
        "h1",
        orchestrator.tcp_target,
        pki.credentials("h1", "agent"),
        heartbeat_interval=HEARTBEAT_S,
    )
    await agent.connect()
    return agent


@pytest.mark.asyncio
async def test_an_agent_that_ends_its_stream_in_order_is_said_to_have_closed_it(
    orchestrator: RunningOrchestrator, pki: Pki, fleet: FleetStub
) -> None:
    agent = await _joined(orchestrator, pki)
    agent.finish()
    assert await _disconnected(fleet, "h1") == "h1 disconnected: the agent closed the stream"
    await agent.close()


@pytest.mark.asyncio
async def test_an_agent_that_vanishes_did_not_close_anything(
    orchestrator: RunningOrchestrator, pki: Pki, fleet: FleetStub
) -> None:
    agent = await _joined(orchestrator, pki)
    await asyncio.sleep(2 * HEARTBEAT_S)
    await agent.close()
    message = await _disconnected(fleet, "h1")
    assert "the connection was lost without the agent closing the stream" in message


@pytest.mark.asyncio
async def test_a_silent_host_whose_connection_drops_is_said_to_have_fallen_silent(
    orchestrator: RunningOrchestrator, pki: Pki, fleet: FleetStub
) -> None:
    agent = await _joined(orchestrator, pki)
    agent.heartbeats_paused = True
    await asyncio.sleep(8 * HEARTBEAT_S)
    await agent.close()
    message = await _disconnected(fleet, "h1")
    assert "the connection was lost after" in message
    assert "without a word from the agent" in message
