"""The orchestrator's gRPC listeners on asyncio: one event loop serves every stream.

Two servers share the loop, because a gRPC server offers the same services on all its
ports: the unix socket serves FleetService to local operators (file permissions are
its access control), the mutual-TLS port serves AgentLinkService to agents and
FleetService to operators (the certificate's role is checked per call).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from ozwald.orchestrator.v1 import (
    agent_link_service_pb2,
    agent_link_service_pb2_grpc,
    fleet_service_pb2,
    fleet_service_pb2_grpc,
)

from ozwald_orchestrator.agent_link import AgentLinkServicer
from ozwald_orchestrator.fleet import Fleet
from ozwald_orchestrator.fleet_service import FleetServicer
from ozwald_orchestrator.request_logging import CorrelationInterceptor

logger = logging.getLogger(__name__)

FLEET_SERVICE = fleet_service_pb2.DESCRIPTOR.services_by_name["FleetService"].full_name
AGENT_LINK_SERVICE = agent_link_service_pb2.DESCRIPTOR.services_by_name[
    "AgentLinkService"
].full_name
HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
SOCKET_MODE = 0o660
# Agents hold their stream open for days; keepalives find dead peers that never said
# goodbye (a host that lost power), without waiting for the TCP timeout.
_OPTIONS = [
    # Without this, Linux lets a second orchestrator bind the same TCP port.
    ("grpc.so_reuseport", 0),
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_concurrent_streams", 100_000),
]


class ListenError(Exception):
    """A listener could not be opened (permissions, bad address, unreadable TLS files)."""


class TlsMaterialError(ListenError):
    """The TLS files cannot be read, are not PEM, or the key does not match the cert."""


@dataclass(frozen=True)
class TlsListener:
    """A TCP listener that accepts only clients with a certificate signed by client_ca."""

    address: str
    cert: Path
    key: Path
    client_ca: Path


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
        local = self._server(FleetServicer(self._fleet, require_operator=False), ())
        self._bind_unix(local)
        self._servers.append(local)
        if self._tls is not None:
            remote = self._server(
                FleetServicer(self._fleet, require_operator=True), (AGENT_LINK_SERVICE,)
            )
            agent_link_service_pb2_grpc.add_AgentLinkServiceServicer_to_server(
                self._agent_link, remote
            )
            self.tcp_port = _bind_tls(remote, self._tls)
            self._servers.append(remote)
        for server in self._servers:
            await server.start()
        for name in ("", FLEET_SERVICE, AGENT_LINK_SERVICE):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)

    def _server(self, fleet_servicer: FleetServicer, more: tuple[str, ...]) -> grpc.aio.Server:
        """A server with FleetService, health and reflection; `more` names the services
        the caller adds, for reflection."""
        server = grpc.aio.server(interceptors=[CorrelationInterceptor()], options=_OPTIONS)
        fleet_service_pb2_grpc.add_FleetServiceServicer_to_server(fleet_servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            (FLEET_SERVICE, *more, HEALTH_SERVICE, reflection.SERVICE_NAME), server
        )
        return server

    def _bind_unix(self, server: grpc.aio.Server) -> None:
        path = self._socket_path
        # The umask closes the window between bind and chmod in which others could connect.
        previous = os.umask(0o117)
        try:
            server.add_insecure_port(f"unix:{path}")
        except RuntimeError as e:
            raise ListenError(f"cannot listen on unix socket {path}: {e}") from e
        finally:
            os.umask(previous)
        os.chmod(path, SOCKET_MODE)
        if self._socket_gid is not None:
            os.chown(path, -1, self._socket_gid)

    async def stop(self, grace_s: float = 1.0) -> None:
        """Refuse new calls, end agents' streams, wait for calls in flight."""
        self._agent_link.shutting_down = True
        await self._health.enter_graceful_shutdown()
        self._fleet.close_sessions("the orchestrator is shutting down")
        for server in self._servers:
            await server.stop(grace_s)
        self._servers = []


def _bind_tls(server: grpc.aio.Server, tcp: TlsListener) -> int:
    try:
        cert, key, client_ca = (
            tcp.cert.read_bytes(),
            tcp.key.read_bytes(),
            tcp.client_ca.read_bytes(),
        )
    except OSError as e:
        raise TlsMaterialError(f"cannot read TLS material: {e}") from e
    _check_tls(tcp, cert, key, client_ca)
    credentials = grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=True
    )
    try:
        port = server.add_secure_port(tcp.address, credentials)
    except RuntimeError as e:
        raise ListenError(f"cannot listen on {tcp.address}: {e}") from e
    if port == 0:
        raise ListenError(f"cannot listen on {tcp.address}: the address is in use or invalid")
    return port


def _check_tls(tcp: TlsListener, cert: bytes, key: bytes, client_ca: bytes) -> None:
    """Say which file is wrong before gRPC's bind fails with a bare "failed to bind"."""
    try:
        certificate = x509.load_pem_x509_certificate(cert)
    except ValueError as e:
        raise TlsMaterialError(f"--tls-cert {tcp.cert} is not a PEM certificate ({e})") from e
    try:
        private_key = serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError) as e:
        raise TlsMaterialError(
            f"--tls-key {tcp.key} is not an unencrypted PEM private key ({e})"
        ) from e
    try:
        x509.load_pem_x509_certificates(client_ca)
    except ValueError as e:
        raise TlsMaterialError(
            f"--tls-client-ca {tcp.client_ca} is not a PEM certificate ({e})"
        ) from e
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.DER
    if private_key.public_key().public_bytes(
        encoding, public
    ) != certificate.public_key().public_bytes(encoding, public):
        raise TlsMaterialError(f"--tls-key {tcp.key} is not the key of --tls-cert {tcp.cert}")
