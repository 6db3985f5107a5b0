"""An in-process fake agent for tests of code that talks to agents through the SDK.

`FakeAgent` is a real AgentService servicer with scripted behaviour (a profile to serve,
failures to send, a slow answer, streams that break), and `serve_agent` runs any
servicer on a real gRPC server: a fresh unix socket, or localhost TCP with mutual TLS.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import grpc
from ozwald.agent.v1 import agent_service_pb2_grpc
from ozwald.agent.v1.agent_service_pb2 import (
    GetHostProfileRequest,
    GetHostProfileResponse,
    WatchHostProfileRequest,
    WatchHostProfileResponse,
)
from ozwald.common.v1.error_reason_pb2 import ErrorReason
from ozwald.common.v1.host_profile_pb2 import HostProfile

from ozwald_sdk import rpc_status
from ozwald_sdk.metadata import CORRELATION_ID_KEY

FAKE_WATCH_INTERVAL = 5.0


@dataclass(frozen=True)
class Failure:
    """How a scripted call fails. Without `reason` the status carries no ErrorInfo, as
    when gRPC itself (not an Ozwald handler) ends a call."""

    code: grpc.StatusCode
    message: str
    reason: ErrorReason.ValueType | None = None
    remedy: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)

    def abort(self, context: grpc.ServicerContext) -> None:
        if self.reason is None:
            context.abort(self.code, self.message)
        rpc_status.abort(
            context, self.code, self.reason, self.message, self.remedy, **self.metadata
        )


@dataclass(frozen=True)
class ReceivedCall:
    """What the fake saw of one call."""

    method: str
    correlation_id: str | None
    # Seconds left until the caller's deadline when the call arrived; None without one.
    time_remaining: float | None
    # WatchHostProfile only: the interval asked for, in seconds.
    interval: float | None = None


class HostProfileOnlyServicer(agent_service_pb2_grpc.AgentServiceServicer):
    """Base for fakes that serve host facts only: provisioning calls are UNIMPLEMENTED."""

    def _not_faked(self, context: grpc.ServicerContext) -> NoReturn:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "this fake agent serves host profiles only")

    def PlanServices(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._not_faked(context)

    def ApplyServices(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._not_faked(context)

    def StopServices(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._not_faked(context)

    def ListServices(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._not_faked(context)

    def WatchServices(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._not_faked(context)

    def StreamServiceLogs(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._not_faked(context)

    def ProfileServices(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._not_faked(context)

    def ListFootprints(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._not_faked(context)

    def ForgetFootprints(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._not_faked(context)

    def ListWebhookDeliveries(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._not_faked(context)


class FakeAgent(HostProfileOnlyServicer):
    """Serves `profile`, or fails as scripted with `fail_next`.

    `delay` holds every GetHostProfile answer back that many seconds. With
    `messages_per_stream`, every watch stream breaks (UNAVAILABLE, no details) after
    sending that many profiles.
    """

    def __init__(
        self,
        profile: HostProfile | None = None,
        *,
        delay: float = 0.0,
        messages_per_stream: int | None = None,
    ) -> None:
        self.profile = profile if profile is not None else HostProfile(hostname="fake-host")
        self.delay = delay
        self.messages_per_stream = messages_per_stream
        self._lock = threading.Lock()
        self._failures: list[Failure] = []
        self._calls: list[ReceivedCall] = []

    def fail_next(self, failure: Failure, *, times: int = 1) -> None:
        """Make the next `times` calls, of any method, fail with `failure`."""
        with self._lock:
            self._failures.extend([failure] * times)

    @property
    def calls(self) -> list[ReceivedCall]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[ReceivedCall]:
        return [call for call in self.calls if call.method == method]

    def GetHostProfile(
        self, request: GetHostProfileRequest, context: grpc.ServicerContext
    ) -> GetHostProfileResponse:
        self._arrive("GetHostProfile", context, interval=None)
        if self.delay:
            time.sleep(self.delay)
        return GetHostProfileResponse(profile=self.profile)

    def WatchHostProfile(
        self, request: WatchHostProfileRequest, context: grpc.ServicerContext
    ) -> Iterator[WatchHostProfileResponse]:
        interval = (
            request.interval.ToTimedelta().total_seconds()
            if request.HasField("interval")
            else FAKE_WATCH_INTERVAL
        )
        self._arrive("WatchHostProfile", context, interval=interval)
        gone = threading.Event()
        context.add_callback(gone.set)
        sequence = 0
        while not gone.is_set():
            if self.messages_per_stream is not None and sequence >= self.messages_per_stream:
                context.abort(grpc.StatusCode.UNAVAILABLE, "fake agent broke the stream")
            sequence += 1
            yield WatchHostProfileResponse(profile=self.profile, sequence=sequence)
            gone.wait(interval)

    def _arrive(
        self, method: str, context: grpc.ServicerContext, *, interval: float | None
    ) -> None:
        metadata = dict(context.invocation_metadata())
        correlation_id = metadata.get(CORRELATION_ID_KEY)
        with self._lock:
            self._calls.append(
                ReceivedCall(
                    method=method,
                    correlation_id=correlation_id if isinstance(correlation_id, str) else None,
                    time_remaining=context.time_remaining(),
                    interval=interval,
                )
            )
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            failure.abort(context)


@dataclass(frozen=True)
class ServerTls:
    """PEM material for a TCP listener that demands client certificates signed by client_ca."""

    cert: bytes
    key: bytes
    client_ca: bytes


@contextmanager
def serve_agent(
    servicer: agent_service_pb2_grpc.AgentServiceServicer, *, tls: ServerTls | None = None
) -> Iterator[str]:
    """Run `servicer` on a real gRPC server and yield the address clients should dial.

    Without `tls`: a unix socket in a fresh short directory under /tmp (socket paths are
    limited to 107 bytes). With `tls`: localhost on a free port, mutual TLS required.
    """
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    agent_service_pb2_grpc.add_AgentServiceServicer_to_server(servicer, server)
    directory = Path(tempfile.mkdtemp(prefix="oz-", dir="/tmp"))
    try:
        if tls is None:
            socket_path = directory / "agent.sock"
            server.add_insecure_port(f"unix:{socket_path}")
            address = f"unix://{socket_path}"
        else:
            credentials = grpc.ssl_server_credentials(
                [(tls.key, tls.cert)], root_certificates=tls.client_ca, require_client_auth=True
            )
            address = f"localhost:{server.add_secure_port('localhost:0', credentials)}"
        server.start()
        try:
            yield address
        finally:
            server.stop(grace=None)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
