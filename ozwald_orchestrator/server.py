"""The orchestrator's gRPC listeners on asyncio: one event loop serves every stream.

Two servers share the loop, because a gRPC server offers the same services on all its
ports: the unix socket serves FleetService to local operators (file permissions are
its access control), the mutual-TLS port serves AgentLinkService to agents and
FleetService to operators (the certificate's role is checked per call).
"""

from __future__ import annotations

import logging
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from ozwald.orchestrator.v1 import (
    agent_link_service_pb2,
    agent_link_service_pb2_grpc,
    audit_service_pb2,
    audit_service_pb2_grpc,
    fleet_service_pb2,
    fleet_service_pb2_grpc,
)

from ozwald_orchestrator.agent_link import AgentLinkServicer
from ozwald_orchestrator.audit.service import AuditServicer
from ozwald_orchestrator.fleet import Fleet
from ozwald_orchestrator.fleet_service import FleetServicer
from ozwald_sdk.process.listeners import TlsListener, bind_tls, bind_unix
from ozwald_sdk.process.request_logging import AsyncRequestLoggingInterceptor

logger = logging.getLogger(__name__)

FLEET_SERVICE = fleet_service_pb2.DESCRIPTOR.services_by_name["FleetService"].full_name
AGENT_LINK_SERVICE = agent_link_service_pb2.DESCRIPTOR.services_by_name[
    "AgentLinkService"
].full_name
AUDIT_SERVICE = audit_service_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name
HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
# Agents hold their stream open for days; keepalives find dead peers that never said
# goodbye (a host that lost power), without waiting for the TCP timeout.
_OPTIONS = [
    # Without this, Linux lets a second orchestrator bind the same TCP port.
    ("grpc.so_reuseport", 0),
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    # grpcio 1.85 ends a transport whose ping goes unanswered only at the ping timeout
    # (a minute by default), whatever keepalive_timeout_ms says.
    ("grpc.http2.ping_timeout_ms", 10_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_concurrent_streams", 100_000),
]


class OrchestratorServer:
    """Both servers: `start()`, then `stop()` once."""

    def __init__(
        self, fleet: Fleet, socket_path: Path, tls: TlsListener | None, socket_gid: int | None
    ) -> None:
        self._fleet = fleet
        self._socket_path = socket_path
        self._tls = tls
        self._socket_gid = socket_gid
        self._health = health.aio.HealthServicer()
        self._agent_link = AgentLinkServicer(fleet)
        self._servers: list[grpc.aio.Server] = []
        self.tcp_port: int | None = None

    async def start(self) -> None:
        local = self._server(require_operator=False, more=())
        bind_unix(local, self._socket_path, self._socket_gid)
        self._servers.append(local)
        if self._tls is not None:
            remote = self._server(require_operator=True, more=(AGENT_LINK_SERVICE,))
            agent_link_service_pb2_grpc.add_AgentLinkServiceServicer_to_server(
                self._agent_link, remote
            )
            self.tcp_port = bind_tls(remote, self._tls)
            self._servers.append(remote)
        for server in self._servers:
            await server.start()
        for name in ("", FLEET_SERVICE, AGENT_LINK_SERVICE, *self._audit_services()):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)

    def _audit_services(self) -> tuple[str, ...]:
        return (AUDIT_SERVICE,) if self._fleet.audit.log is not None else ()

    def _server(self, *, require_operator: bool, more: tuple[str, ...]) -> grpc.aio.Server:
        """A server with FleetService, AuditService, health and reflection (operators'
        services checking the caller's role when `require_operator`); `more` names the
        services the caller adds, for reflection."""
        server = grpc.aio.server(interceptors=[AsyncRequestLoggingInterceptor()], options=_OPTIONS)
        fleet_service_pb2_grpc.add_FleetServiceServicer_to_server(
            FleetServicer(self._fleet, require_operator=require_operator), server
        )
        audit_log = self._fleet.audit.log
        if audit_log is not None:
            audit_service_pb2_grpc.add_AuditServiceServicer_to_server(
                AuditServicer(audit_log, require_operator=require_operator), server
            )
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            (
                FLEET_SERVICE,
                *self._audit_services(),
                *more,
                HEALTH_SERVICE,
                reflection.SERVICE_NAME,
            ),
            server,
        )
        return server

    async def stop(self, grace_s: float = 1.0) -> None:
        """Refuse new calls, end agents' streams, wait for calls in flight."""
        self._agent_link.shutting_down = True
        await self._health.enter_graceful_shutdown()
        self._fleet.close_sessions("the orchestrator is shutting down")
        for server in self._servers:
            await server.stop(grace_s)
        self._servers = []
