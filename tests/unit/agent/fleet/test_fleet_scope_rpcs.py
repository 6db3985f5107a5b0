"""The FLEET set over the agent's own API: readable like any other, never replaced by an
operator's ApplyServices (only the orchestrator link replaces it)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status as grpc_rpc_status
from ozwald.agent.v1 import agent_service_pb2, agent_service_pb2_grpc
from ozwald.orchestrator.v1 import agent_link_service_pb2 as link_pb2

from ozwald_agent.fleet.assignment import AssignmentHandler
from ozwald_agent.servicer import AgentServicer
from tests.support.short_paths import short_tmpdir
from tests.unit.agent.fleet.agent_parts import FLEET, AgentParts, agent_parts, instance


@dataclass
class Served:
    parts: AgentParts
    stub: agent_service_pb2_grpc.AgentServiceStub


@pytest.fixture
def served() -> Iterator[Served]:
    with short_tmpdir() as tmp:
        parts = agent_parts(tmp)
        servicer = AgentServicer(lambda: parts.profile, parts.provisioner)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        agent_service_pb2_grpc.add_AgentServiceServicer_to_server(servicer, server)
        server.add_insecure_port(f"unix:{tmp}/a.sock")
        server.start()
        with grpc.insecure_channel(f"unix:{tmp}/a.sock") as channel:
            yield Served(parts, agent_service_pb2_grpc.AgentServiceStub(channel))
        servicer.shut_down()
        server.stop(None)
        parts.close()


def test_apply_services_refuses_the_fleet_scope_and_changes_nothing(served: Served) -> None:
    AssignmentHandler(served.parts.provisioner, served.parts.store).handle(
        link_pb2.Assignment(version=1, services=[instance("web-0")])
    )

    with pytest.raises(grpc.RpcError) as refused:
        served.stub.ApplyServices(
            agent_service_pb2.ApplyServicesRequest(services=[instance("mine-0")], scope=FLEET),
            timeout=5,
        )

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = grpc_rpc_status.from_call(refused.value)  # type: ignore[arg-type]
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert info.reason == "INVALID_ARGUMENT"
    assert "orchestrator" in (refused.value.details() or "")
    assert served.parts.provisioner.scope_keys(FLEET) == {("fleet", "web-0")}


def test_fleet_instances_are_listed_with_the_others(served: Served) -> None:
    AssignmentHandler(served.parts.provisioner, served.parts.store).handle(
        link_pb2.Assignment(version=1, services=[instance("web-0")])
    )
    served.parts.provisioner.reconciler.reconcile_once()

    listed = served.stub.ListServices(agent_service_pb2.ListServicesRequest(), timeout=5)

    assert [(s.realm, s.name) for s in listed.instances] == [("fleet", "web-0")]
