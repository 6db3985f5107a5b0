"""AsyncAgentClient's provisioning calls against a real in-process server."""

from __future__ import annotations

import asyncio

from ozwald.agent.v1 import agent_service_pb2 as pb
from ozwald.agent.v1 import service_status_pb2 as S
from ozwald.common.v1.host_profile_pb2 import HostProfile
from ozwald.common.v1.service_spec_pb2 import ServiceSpec

from ozwald_sdk.agent_client import AsyncAgentClient
from ozwald_sdk.testing import serve_agent
from tests.unit.cli.provisioning_fake import ProvisioningFake

WEB = ServiceSpec(realm="default", name="web", image="ozwald/tiny:local")


def _host() -> HostProfile:
    host = HostProfile(hostname="h")
    host.cpu.usable_cores = 4
    host.memory.total_bytes = host.memory.available_bytes = 8 << 30
    return host


def test_plan_apply_watch_list_and_stop() -> None:
    fake = ProvisioningFake(_host())

    async def scenario(
        address: str,
    ) -> tuple[bool, list[S.InstanceState.ValueType], list[str], list[str]]:
        async with AsyncAgentClient(address, timeout=5) as client:
            plan = await client.plan_services([WEB])
            applied = await client.apply_services([WEB])
            states: list[S.InstanceState.ValueType] = []
            async for event in client.watch_services(
                after_sequence=applied.event_sequence, timeout=2
            ):
                states.append(event.status.state)
                if event.status.state == S.INSTANCE_STATE_READY:
                    break
            listed = [s.name for s in (await client.list_services()).instances]
            stopped = [r.name for r in (await client.stop_services()).stopping]
            return plan.admitted, states, listed, stopped

    with serve_agent(fake) as address:
        admitted, states, listed, stopped = asyncio.run(scenario(address))
    fake.join()
    assert admitted
    assert states[-1] == S.INSTANCE_STATE_READY
    assert S.INSTANCE_STATE_STARTING in states
    assert listed == ["web"]
    assert stopped == ["web"]


def test_profile_list_and_forget_footprints() -> None:
    fake = ProvisioningFake(_host())

    async def scenario(address: str) -> tuple[list[str], list[str], list[str], list[str]]:
        async with AsyncAgentClient(address, timeout=5) as client:
            phases = [
                pb.ProfilePhase.Name(message.phase)
                async for message in client.profile_services([WEB], warmup_requests=0)
            ]
            listed = [f.service for f in await client.list_footprints()]
            forgotten = [f.service for f in await client.forget_footprints("web")]
            after = [f.service for f in await client.list_footprints()]
        return phases, listed, forgotten, after

    with serve_agent(fake) as address:
        phases, listed, forgotten, after = asyncio.run(scenario(address))

    assert phases[0] == "PROFILE_PHASE_ADMITTING" and phases[-1] == "PROFILE_PHASE_DONE"
    assert (listed, forgotten, after) == (["web"], ["web"], [])
    (request,) = fake.profiling.profiled
    assert request.HasField("warmup_requests") and request.warmup_requests == 0
