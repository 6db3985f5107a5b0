"""A small orchestrator for agent-link tests: it records what the agent sends and sends
what the test tells it to, on a real gRPC server (insecure or mutual TLS)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from typing import cast

import grpc
from cryptography import x509
from cryptography.x509.oid import NameOID
from google.protobuf.duration_pb2 import Duration
from ozwald.common.v1 import service_spec_pb2
from ozwald.orchestrator.v1 import agent_link_service_pb2 as link_pb2
from ozwald.orchestrator.v1 import agent_link_service_pb2_grpc as link_grpc

from ozwald_sdk.testing import ServerTls

Request = link_pb2.ConnectRequest


@dataclass
class Session:
    """One stream: who opened it (the client certificate's CN) and what came up it."""

    number: int
    peer_common_name: str
    requests: list[Request] = field(default_factory=list)
    outbox: queue.SimpleQueue[link_pb2.ConnectResponse] = field(default_factory=queue.SimpleQueue)
    ended: threading.Event = field(default_factory=threading.Event)

    @property
    def register(self) -> link_pb2.Register:
        return self.requests[0].register

    def of_kind(self, kind: str) -> list[Request]:
        return [r for r in self.requests if r.WhichOneof("message") == kind]


class RecordingOrchestrator(link_grpc.AgentLinkServiceServicer):
    def __init__(self, heartbeat_interval_s: float = 0.2, *, answer_register: bool = True) -> None:
        self._interval = Duration()
        self._interval.FromMilliseconds(int(heartbeat_interval_s * 1000))
        self._answer_register = answer_register
        self._changed = threading.Condition()
        self.sessions: list[Session] = []

    # The service ------------------------------------------------------------------

    def Connect(
        self, request_iterator: Iterator[Request], context: grpc.ServicerContext
    ) -> Iterator[link_pb2.ConnectResponse]:
        first = next(request_iterator)
        with self._changed:
            # Listed once its first message (the Register) is in: tests read it at once.
            session = Session(len(self.sessions) + 1, _peer_common_name(context), [first])
            self.sessions.append(session)
            self._changed.notify_all()
        reader = threading.Thread(target=self._read, args=(session, request_iterator))
        reader.start()
        if self._answer_register:
            yield link_pb2.ConnectResponse(
                registered=link_pb2.Registered(
                    heartbeat_interval=self._interval, session_id=f"s{session.number}"
                )
            )
        while context.is_active() and not session.ended.is_set():
            try:
                yield session.outbox.get(timeout=0.05)
            except queue.Empty:
                continue

    def _read(self, session: Session, requests: Iterator[Request]) -> None:
        try:
            for request in requests:
                self._record(session, request)
        except grpc.RpcError:
            pass
        finally:
            session.ended.set()
            with self._changed:
                self._changed.notify_all()

    def _record(self, session: Session, request: Request) -> None:
        with self._changed:
            session.requests.append(request)
            self._changed.notify_all()

    # What tests use ---------------------------------------------------------------

    def assign(
        self, version: int, services: list[service_spec_pb2.ServiceSpec], session: Session
    ) -> None:
        session.outbox.put(
            link_pb2.ConnectResponse(
                assignment=link_pb2.Assignment(version=version, services=services)
            )
        )

    def wait_for(
        self, found: Callable[[list[Session]], object], timeout: float = 20.0, what: str = ""
    ) -> object:
        """Waits until `found(sessions)` returns something truthy, and returns it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = found(self.sessions)
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"timed out waiting for {what or found}; sessions: {self.describe()}"
                    )
                self._changed.wait(min(left, 0.2))

    def wait_session(self, number: int, timeout: float = 20.0) -> Session:
        def registered(sessions: list[Session]) -> Session | None:
            return sessions[number - 1] if len(sessions) >= number else None

        found = self.wait_for(registered, timeout, f"session {number}")
        assert isinstance(found, Session)
        return found

    def wait_result(
        self, session: Session, version: int, timeout: float = 20.0
    ) -> link_pb2.AssignmentResult:
        def result(_: list[Session]) -> link_pb2.AssignmentResult | None:
            for request in session.of_kind("assignment_result"):
                if request.assignment_result.version == version:
                    return request.assignment_result
            return None

        found = self.wait_for(result, timeout, f"AssignmentResult v{version}")
        assert isinstance(found, link_pb2.AssignmentResult)
        return found

    def describe(self) -> str:
        return "; ".join(
            f"#{s.number} {s.peer_common_name or '-'}: "
            + ", ".join(r.WhichOneof("message") or "?" for r in s.requests[-12:])
            for s in self.sessions
        )


def serve(
    servicer: RecordingOrchestrator, *, port: int = 0, tls: ServerTls | None = None
) -> tuple[grpc.Server, int]:
    """Starts `servicer` on 127.0.0.1:`port` (0: a free one); returns the server and port."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8),
        # The real orchestrator's ping policy, so the agent's keepalive pings (every
        # 10 s) meet the same server as in production.
        options=[("grpc.http2.min_ping_interval_without_data_ms", 5_000)],
    )
    link_grpc.add_AgentLinkServiceServicer_to_server(servicer, server)
    address = f"127.0.0.1:{port}"
    if tls is None:
        bound = server.add_insecure_port(address)
    else:
        credentials = grpc.ssl_server_credentials(
            [(tls.key, tls.cert)], root_certificates=tls.client_ca, require_client_auth=True
        )
        bound = server.add_secure_port(address, credentials)
    server.start()
    return server, bound


def _peer_common_name(context: grpc.ServicerContext) -> str:
    # The stubs type the auth context as str -> bytes; gRPC gives lists of bytes.
    auth = cast("Mapping[str, Sequence[bytes]]", context.auth_context())
    pem = auth.get("x509_pem_cert")
    if not pem:
        return ""
    names = x509.load_pem_x509_certificate(pem[0]).subject.get_attributes_for_oid(
        NameOID.COMMON_NAME
    )
    value = names[0].value if names else ""
    return value.decode() if isinstance(value, bytes) else value
