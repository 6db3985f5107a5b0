"""FleetService of the real process: errors on the wire, events, exit codes."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from ozwald.orchestrator.v1 import fleet_service_pb2

from tests.integration.orchestrator.fake_agent import FakeAgent
from tests.integration.orchestrator.orchestrator_process import (
    ORCHESTRATOR,
    FleetStub,
    Pki,
    RunningOrchestrator,
)
from tests.integration.orchestrator.wire import error_info, web

pytestmark = pytest.mark.integration


@pytest.mark.asyncio
async def test_an_invalid_deployment_is_refused_with_its_reason_and_nothing_is_stored(
    fleet: FleetStub,
) -> None:
    bad = web(name="api")
    bad.candidates[0].depends_on.append("db")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await fleet.ApplyDeployments(
            fleet_service_pb2.ApplyDeploymentsRequest(deployments=[web(), bad]), timeout=5
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(refused.value)
    assert info.reason == "DEPLOYMENT_INVALID"
    assert info.metadata["deployment"] == "api"
    assert "depends on db" in (refused.value.details() or "")
    listed = await fleet.ListDeployments(fleet_service_pb2.ListDeploymentsRequest(), timeout=5)
    assert list(listed.deployments) == []


@pytest.mark.asyncio
async def test_an_unknown_deployment_is_not_found(fleet: FleetStub) -> None:
    for call in (
        fleet.GetDeployment(fleet_service_pb2.GetDeploymentRequest(name="nope"), timeout=5),
        fleet.ExplainDeployment(fleet_service_pb2.ExplainDeploymentRequest(name="nope"), timeout=5),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await call
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        info = error_info(missing.value)
        assert info.reason == "DEPLOYMENT_NOT_FOUND" and info.metadata["deployment"] == "nope"


@pytest.mark.asyncio
async def test_events_are_stored_then_followed_live_and_resumed_by_sequence(
    orchestrator: RunningOrchestrator, pki: Pki, fleet: FleetStub
) -> None:
    h1 = FakeAgent("h1", orchestrator.tcp_target, pki.credentials("h1", "agent"))
    await h1.connect()
    applied = await fleet.ApplyDeployments(
        fleet_service_pb2.ApplyDeploymentsRequest(deployments=[web()]), timeout=5
    )

    async def stored(after: int) -> list[tuple[int, str]]:
        stream = fleet.WatchEvents(
            fleet_service_pb2.WatchEventsRequest(after_sequence=after, stored_only=True), timeout=5
        )
        return [(r.event.sequence, r.event.kind) async for r in stream]

    # Events reach the store within a flush interval of happening.
    await asyncio.sleep(0.5)
    everything = await stored(0)
    kinds = [kind for _, kind in everything]
    assert kinds[0] == "host-joined"
    assert "deployment-applied" in kinds and "instance-placed" in kinds
    assert [sequence for sequence, _ in everything] == list(range(1, len(everything) + 1))
    # ApplyDeploymentsResponse.event_sequence: from there on, what the apply caused.
    caused = await stored(applied.event_sequence)
    assert caused[0][1] == "deployment-applied"

    live = fleet.WatchEvents(
        fleet_service_pb2.WatchEventsRequest(after_sequence=everything[-1][0]), timeout=10
    )
    h2 = FakeAgent("h2", orchestrator.tcp_target, pki.credentials("h2", "agent"))
    await h2.connect()
    first = await asyncio.wait_for(live.read(), 5)
    assert isinstance(first, fleet_service_pb2.WatchEventsResponse)
    assert first.event.kind == "host-joined" and first.event.host_id == "h2"
    assert first.event.sequence == everything[-1][0] + 1
    live.cancel()
    for agent in (h1, h2):
        await agent.close()


def _run(workdir: Path, pki: Pki, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *ORCHESTRATOR,
            "--socket",
            str(workdir / "second.sock"),
            "--state-dir",
            str(workdir / "orchestrator-state"),
            "--tls-cert",
            str(pki.server_cert),
            "--tls-key",
            str(pki.server_key),
            "--tls-client-ca",
            str(pki.ca),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_a_second_orchestrator_on_the_same_state_directory_exits_3(
    orchestrator: RunningOrchestrator, workdir: Path, pki: Pki
) -> None:
    result = _run(workdir, pki, "--listen", "127.0.0.1:0")
    assert result.returncode == 3, result.stderr
    assert "already uses the state directory" in result.stderr


def test_a_port_in_use_exits_4(workdir: Path, pki: Pki) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _run(workdir, pki, "--listen", f"127.0.0.1:{port}")
    assert result.returncode == 4, result.stderr
    assert "cannot listen" in result.stderr


def test_listen_without_tls_is_a_usage_error(workdir: Path) -> None:
    result = subprocess.run(
        [*ORCHESTRATOR, "--state-dir", str(workdir / "s"), "--listen", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "mutual TLS" in result.stderr


async def _reflected(channel: grpc.aio.Channel) -> list[str]:
    # The reflection stubs are typed for the synchronous API only.
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)  # type: ignore[arg-type]
    call = reflection.ServerReflectionInfo(  # type: ignore[operator]
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
    )
    return [s.name async for r in call for s in r.list_services_response.service]


@pytest.mark.asyncio
async def test_health_and_reflection_answer_on_both_listeners(
    orchestrator: RunningOrchestrator, pki: Pki
) -> None:
    async with grpc.aio.insecure_channel(orchestrator.unix_target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "ozwald.orchestrator.v1.FleetService"):
            # types-grpcio-health-checking declares the stub without its methods.
            reply = await health.Check(  # type: ignore[attr-defined]
                health_pb2.HealthCheckRequest(service=service), timeout=5
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        local = await _reflected(channel)
    # Agents connect over TCP only; operators may use either.
    assert "ozwald.orchestrator.v1.FleetService" in local
    assert "ozwald.orchestrator.v1.AgentLinkService" not in local
    async with grpc.aio.secure_channel(
        orchestrator.tcp_target,
        pki.credentials("alice", "operator"),
        options=[("grpc.ssl_target_name_override", "localhost")],
    ) as channel:
        remote = await _reflected(channel)
    assert "ozwald.orchestrator.v1.AgentLinkService" in remote


def test_a_key_that_is_not_the_certificate_s_exits_4_naming_it(workdir: Path, pki: Pki) -> None:
    stranger = pki.authority.issue("someone-else", server=True)
    _, wrong_key = stranger.write(workdir, "stranger")
    result = subprocess.run(
        [
            *ORCHESTRATOR,
            "--socket",
            str(workdir / "o.sock"),
            "--state-dir",
            str(workdir / "state"),
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            str(pki.server_cert),
            "--tls-key",
            str(wrong_key),
            "--tls-client-ca",
            str(pki.ca),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 4, result.stderr
    assert f"--tls-key {wrong_key} is not the key of --tls-cert" in result.stderr
