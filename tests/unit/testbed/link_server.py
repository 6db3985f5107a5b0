"""A small AgentLinkService on a real gRPC server with mutual TLS, for the simulated agents' tests.

It does what the protocol asks of the orchestrator's side and nothing more: it checks that
the client certificate's CN is the host id, answers Register with Registered, sends a
host's assignment whenever the agent has not applied its version, and records everything
the agents send so tests can assert on it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import grpc
import grpc.aio
from google.protobuf import duration_pb2
from ozwald.common.v1 import service_spec_pb2
from ozwald.orchestrator.v1 import agent_link_service_pb2 as link_pb2
from ozwald.orchestrator.v1 import agent_link_service_pb2_grpc as link_grpc

from ozwald_sdk.ca import identity_of
from ozwald_testbed.sim_pki import FleetPki


@dataclass
class HostRecord:
    """What one host's agent sent, across all its streams."""

    registers: list[link_pb2.Register] = field(default_factory=list)
    heartbeats: list[link_pb2.Heartbeat] = field(default_factory=list)
    reports: list[link_pb2.InstanceReport] = field(default_factory=list)
    results: list[link_pb2.AssignmentResult] = field(default_factory=list)
    profiles: list[link_pb2.ProfileReport] = field(default_factory=list)
    assignment: link_pb2.Assignment = field(default_factory=link_pb2.Assignment)
    # Assignments to send; None ends the stream.
    outbox: asyncio.Queue[link_pb2.Assignment | None] | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class LinkServicer(link_grpc.AgentLinkServiceServicer):
    def __init__(self, heartbeat_interval_s: float, heartbeat_ttl_s: float) -> None:
        self.hosts: dict[str, HostRecord] = defaultdict(HostRecord)
        self._interval = _duration(heartbeat_interval_s)
        self._ttl = _duration(heartbeat_ttl_s)
        self._sessions = itertools.count(1)
        self.refused: list[str] = []

    def assign(self, host_id: str, services: Sequence[service_spec_pb2.ServiceSpec]) -> int:
        """Makes `services` the host's desired set; sent now when its agent is connected."""
        host = self.hosts[host_id]
        host.assignment = link_pb2.Assignment(
            version=host.assignment.version + 1, services=services
        )
        if host.outbox is not None:
            host.outbox.put_nowait(host.assignment)
        return host.assignment.version

    async def wait_for(
        self, host_id: str, predicate: Callable[[HostRecord], bool], timeout: float = 5.0
    ) -> None:
        """Waits until `predicate` holds for what the host's agent sent."""
        host = self.hosts[host_id]

        async def until() -> None:
            while not predicate(host):
                host.changed.clear()
                await host.changed.wait()

        await asyncio.wait_for(until(), timeout)

    def drop(self, host_id: str) -> None:
        """Ends the host's current stream from the server's side."""
        outbox = self.hosts[host_id].outbox
        if outbox is not None:
            outbox.put_nowait(None)

    async def Connect(
        self,
        request_iterator: AsyncIterator[link_pb2.ConnectRequest],
        context: grpc.aio.ServicerContext[link_pb2.ConnectRequest, link_pb2.ConnectResponse],
    ) -> AsyncIterator[link_pb2.ConnectResponse]:
        pem = next(iter(context.auth_context().get("x509_pem_cert", [b""])))
        identity = identity_of(pem)
        first = await anext(request_iterator)
        host_id = first.register.host_id
        if identity.role != "agent" or identity.name != host_id:
            self.refused.append(host_id)
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"certificate CN={identity.name!r} role {identity.role!r} may not register "
                f"as host {host_id!r}",
            )
        host = self.hosts[host_id]
        host.registers.append(first.register)
        host.outbox = asyncio.Queue()
        host.changed.set()
        # Queued before Registered goes out, so an assign() racing with it is not sent twice.
        if host.assignment.version > first.register.applied_assignment_version:
            host.outbox.put_nowait(host.assignment)
        yield link_pb2.ConnectResponse(
            registered=link_pb2.Registered(
                heartbeat_interval=self._interval,
                heartbeat_ttl=self._ttl,
                session_id=f"session-{next(self._sessions)}",
            )
        )
        reader = asyncio.get_running_loop().create_task(self._read(host, request_iterator))
        outbox = host.outbox
        try:
            while True:
                getter = asyncio.ensure_future(outbox.get())
                done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    return
                assignment = getter.result()
                if assignment is None:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, "stream dropped by the test")
                yield link_pb2.ConnectResponse(assignment=assignment)
        finally:
            reader.cancel()

    async def _read(
        self, host: HostRecord, requests: AsyncIterator[link_pb2.ConnectRequest]
    ) -> None:
        async for request in requests:
            kind = request.WhichOneof("message")
            if kind == "heartbeat":
                host.heartbeats.append(request.heartbeat)
            elif kind == "instances":
                host.reports.append(request.instances)
            elif kind == "assignment_result":
                host.results.append(request.assignment_result)
            elif kind == "profile":
                host.profiles.append(request.profile)
            host.changed.set()


@asynccontextmanager
async def link_server(
    pki: FleetPki, *, heartbeat_interval_s: float = 0.1, heartbeat_ttl_s: float = 0.5
) -> AsyncIterator[tuple[LinkServicer, str]]:
    """A LinkServicer on localhost with mutual TLS; yields it and the address to dial."""
    files = pki.orchestrator()
    servicer = LinkServicer(heartbeat_interval_s, heartbeat_ttl_s)
    server = grpc.aio.server()
    link_grpc.add_AgentLinkServiceServicer_to_server(servicer, server)
    credentials = grpc.ssl_server_credentials(
        [(files.key.read_bytes(), files.cert.read_bytes())],
        root_certificates=files.client_ca.read_bytes(),
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    try:
        yield servicer, f"127.0.0.1:{port}"
    finally:
        await server.stop(grace=None)


def _duration(seconds: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(int(seconds * 1e9))
    return duration
