"""The clients people and the CLI use to talk to one host's agent.

`AgentClient` (blocking) and `AsyncAgentClient` (asyncio) share one behaviour:

- every call has a deadline (the client's `timeout` unless the call gives its own) shared
  by all its retries;
- idempotent calls are retried on UNAVAILABLE and RESOURCE_EXHAUSTED with jittered
  exponential backoff (`ozwald_sdk.retry`); nothing else is retried;
- a missing unix socket fails at once with AgentUnreachableError instead of waiting out
  the retries;
- every call carries the client's correlation id (metadata x-ozwald-correlation-id),
  so one grep finds it in the agent's log;
- failures are `ozwald_sdk.errors.OzwaldError` subclasses, never grpc.RpcError.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Sequence
from types import TracebackType
from typing import Self, TypeVar

import grpc
from ozwald.agent.v1 import (
    footprint_pb2,
    plan_pb2,
    service_scope_pb2,
    service_status_pb2,
    webhook_delivery_pb2,
)
from ozwald.agent.v1.agent_service_pb2 import (
    ApplyServicesRequest,
    ApplyServicesResponse,
    ForgetFootprintsRequest,
    GetHostProfileRequest,
    ListFootprintsRequest,
    ListServicesRequest,
    ListServicesResponse,
    ListWebhookDeliveriesRequest,
    PlanServicesRequest,
    ProfileServicesRequest,
    ProfileServicesResponse,
    StopServicesRequest,
    StopServicesResponse,
    StreamServiceLogsRequest,
    WatchHostProfileRequest,
    WatchServicesRequest,
    WatchServicesResponse,
)
from ozwald.common.v1.host_profile_pb2 import HostProfile
from ozwald.common.v1.service_spec_pb2 import ServiceSpec

from ozwald_sdk.channel import open_aio_channel, open_channel
from ozwald_sdk.errors import OzwaldError
from ozwald_sdk.metadata import CORRELATION_ID_KEY
from ozwald_sdk.retry import (
    DEFAULT_RETRY,
    RetryPolicy,
    call_with_retry,
    call_with_retry_async,
    is_retryable,
)
from ozwald_sdk.rpc.agent_service import AgentServiceRpc, AsyncAgentServiceRpc
from ozwald_sdk.target import AgentTarget, resolve_target

DEFAULT_TIMEOUT = 10.0
DEFAULT_WATCH_INTERVAL = 5.0
DYNAMIC = service_scope_pb2.SERVICE_SCOPE_DYNAMIC

T = TypeVar("T")


class _AgentClientBase:
    def __init__(
        self,
        target: str | AgentTarget | None,
        *,
        timeout: float,
        retry: RetryPolicy,
        correlation_id: str | None,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        self.target = target if isinstance(target, AgentTarget) else resolve_target(target)
        self.correlation_id = correlation_id or uuid.uuid4().hex
        self.timeout = timeout
        self.retry = retry
        self._metadata = ((CORRELATION_ID_KEY, self.correlation_id),)
        self._closed = False

    def _watch_request(self, interval: float) -> WatchHostProfileRequest:
        request = WatchHostProfileRequest()
        request.interval.FromTimedelta(datetime.timedelta(seconds=interval))
        return request

    def _profile_request(
        self,
        services: Sequence[ServiceSpec],
        warmup_requests: int | None,
        ready_timeout: float | None,
        warmup_request_timeout: float | None,
    ) -> ProfileServicesRequest:
        request = ProfileServicesRequest(services=services)
        if warmup_requests is not None:
            request.warmup_requests = warmup_requests
        if ready_timeout is not None:
            request.ready_timeout.FromTimedelta(datetime.timedelta(seconds=ready_timeout))
        if warmup_request_timeout is not None:
            request.warmup_request_timeout.FromTimedelta(
                datetime.timedelta(seconds=warmup_request_timeout)
            )
        return request

    def _forget_request(
        self, service: str, realm: str, variety: str | None, profile: str | None
    ) -> ForgetFootprintsRequest:
        request = ForgetFootprintsRequest(realm=realm, service=service)
        if variety is not None:
            request.variety = variety
        if profile is not None:
            request.profile = profile
        return request

    def _watch_should_end(self, error: OzwaldError, seconds_left: float | None) -> bool:
        """Whether a failed stream ends the watch quietly: its own deadline, or close()."""
        deadline_passed = (
            error.code == grpc.StatusCode.DEADLINE_EXCEEDED
            and seconds_left is not None
            and not error.reason
        )
        return deadline_passed or (self._closed and error.code == grpc.StatusCode.CANCELLED)

    def _may_reopen(self, error: OzwaldError, failures: int) -> bool:
        return is_retryable(error) and failures < self.retry.max_attempts

    def _pause_before_reopening(self, failures: int, deadline: float | None) -> float | None:
        """Seconds to wait before opening the watch again; None when that passes the deadline."""
        pause = self.retry.delay(failures)
        if deadline is not None and time.monotonic() + pause >= deadline:
            return None
        return pause


class AgentClient(_AgentClientBase):
    """Blocking client for one agent; use it as a context manager, or call close().

    `target` is an address (see ozwald_sdk.target), a resolved AgentTarget, or None for
    $OZWALD_AGENT or the default socket. Raises ConnectionConfigError for an address or
    TLS setting that cannot be used.
    """

    def __init__(
        self,
        target: str | AgentTarget | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        correlation_id: str | None = None,
    ) -> None:
        super().__init__(target, timeout=timeout, retry=retry, correlation_id=correlation_id)
        self._channel = open_channel(self.target)
        self._rpc = AgentServiceRpc(self._channel, self.target)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel; calls in flight end with CANCELLED, watches end quietly."""
        self._closed = True
        self._channel.close()

    def get_host_profile(self, *, timeout: float | None = None) -> HostProfile:
        """The host's profile, collected by the agent now."""

        def attempt(seconds_left: float) -> HostProfile:
            self.target.check_socket()
            response = self._rpc.get_host_profile(
                GetHostProfileRequest(), timeout=seconds_left, metadata=self._metadata
            )
            return response.profile

        return call_with_retry(
            attempt,
            policy=self.retry,
            timeout=self.timeout if timeout is None else timeout,
            idempotent=True,
        )

    def watch_host_profile(
        self, interval: float = DEFAULT_WATCH_INTERVAL, *, timeout: float | None = None
    ) -> Generator[HostProfile, None, None]:
        """The profile now, then again every `interval` seconds, until you stop iterating.

        Each profile is complete state, so a stream that breaks with UNAVAILABLE (the
        agent restarted, a connection dropped) is simply opened again after a jittered
        backoff; `retry.max_attempts` failures in a row without a profile in between
        raise the last error. `timeout` bounds the whole watch: when it passes, the
        iteration ends. It also ends when the agent ends the stream or the client closes.
        """
        request = self._watch_request(interval)
        for response in self._reopening(
            lambda left: self._rpc.watch_host_profile(
                request, timeout=left, metadata=self._metadata
            ),
            timeout,
        ):
            yield response.profile

    def _reopening(
        self, open_stream: Callable[[float | None], Generator[T, None, None]], timeout: float | None
    ) -> Generator[T, None, None]:
        """Messages of `open_stream`, reopened after UNAVAILABLE with backoff until `timeout`.

        `open_stream` gets the seconds left and must build its request anew each time, so a
        resumable stream can ask from its latest cursor.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        failures = 0
        while True:
            seconds_left = None if deadline is None else deadline - time.monotonic()
            try:
                self.target.check_socket()
                with contextlib.closing(open_stream(seconds_left)) as stream:
                    for message in stream:
                        failures = 0
                        yield message
                return
            except OzwaldError as e:
                if self._watch_should_end(e, seconds_left):
                    return
                failures += 1
                if not self._may_reopen(e, failures):
                    raise
                pause = self._pause_before_reopening(failures, deadline)
                if pause is None:
                    return
            time.sleep(pause)

    # Provisioning -------------------------------------------------------------------

    def plan_services(
        self,
        services: Sequence[ServiceSpec],
        *,
        scope: service_scope_pb2.ServiceScope.ValueType = DYNAMIC,
        timeout: float | None = None,
    ) -> plan_pb2.Plan:
        """What applying `services` would do, admission included; changes nothing."""
        request = PlanServicesRequest(services=services, scope=scope)
        return self._call(
            lambda left: (
                self._rpc.plan_services(request, timeout=left, metadata=self._metadata).plan
            ),
            timeout,
        )

    def apply_services(
        self,
        services: Sequence[ServiceSpec],
        *,
        scope: service_scope_pb2.ServiceScope.ValueType = DYNAMIC,
        timeout: float | None = None,
    ) -> ApplyServicesResponse:
        """Make `services` the whole desired set of `scope`, or change nothing.

        Raises AdmissionRefusedError (with the refused plan) when any service cannot be
        admitted. Safe to retry: applying the same set twice changes nothing.
        """
        request = ApplyServicesRequest(services=services, scope=scope)
        return self._call(
            lambda left: self._rpc.apply_services(request, timeout=left, metadata=self._metadata),
            timeout,
        )

    def stop_services(
        self, services: Sequence[tuple[str, str]] = (), *, timeout: float | None = None
    ) -> StopServicesResponse:
        """Stop (realm, name) services; none named stops every dynamic service."""
        request = StopServicesRequest(
            services=[plan_pb2.ServiceRef(realm=r, name=n) for r, n in services]
        )
        return self._call(
            lambda left: self._rpc.stop_services(request, timeout=left, metadata=self._metadata),
            timeout,
        )

    def list_services(
        self, *, realm: str = "", timeout: float | None = None
    ) -> ListServicesResponse:
        """Every instance's status, and the event sequence it reflects."""
        request = ListServicesRequest(realm=realm)
        return self._call(
            lambda left: self._rpc.list_services(request, timeout=left, metadata=self._metadata),
            timeout,
        )

    def watch_services(
        self, *, after_sequence: int = 0, realm: str = "", timeout: float | None = None
    ) -> Generator[service_status_pb2.ServiceEvent, None, None]:
        """State changes after `after_sequence`, until you stop iterating or `timeout`.

        A stream that breaks with UNAVAILABLE is reopened from the last sequence seen,
        so nothing the agent keeps is missed and nothing is repeated.
        """
        cursor = after_sequence

        def open_from_cursor(left: float | None) -> Generator[WatchServicesResponse, None, None]:
            request = WatchServicesRequest(after_sequence=cursor, realm=realm)
            return self._rpc.watch_services(request, timeout=left, metadata=self._metadata)

        for response in self._reopening(open_from_cursor, timeout):
            cursor = response.event.sequence
            yield response.event

    def service_logs(
        self,
        realm: str,
        name: str,
        *,
        tail_lines: int = 0,
        follow: bool = False,
        timeout: float | None = None,
    ) -> Generator[bytes, None, None]:
        """A service's container output; with `follow`, until you stop iterating."""
        self.target.check_socket()
        request = StreamServiceLogsRequest(
            service=plan_pb2.ServiceRef(realm=realm, name=name),
            tail_lines=tail_lines,
            follow=follow,
        )
        seconds = timeout if timeout is not None else (None if follow else self.timeout)
        stream = self._rpc.stream_service_logs(request, timeout=seconds, metadata=self._metadata)
        with contextlib.closing(stream):
            for response in stream:
                yield response.data

    # Profiling ----------------------------------------------------------------------

    def profile_services(
        self,
        services: Sequence[ServiceSpec],
        *,
        warmup_requests: int | None = None,
        ready_timeout: float | None = None,
        warmup_request_timeout: float | None = None,
        timeout: float | None = None,
    ) -> Generator[ProfileServicesResponse, None, None]:
        """Measures each service's footprint in turn; yields progress as it happens.

        Each service ends with a PROFILE_PHASE_DONE message (carrying its footprint) or a
        PROFILE_PHASE_FAILED one. Raises AdmissionRefusedError, before anything starts,
        when a service does not fit now. Never retried (a retry would measure again);
        stopping the iteration cancels the profiling and the agent removes the copy.
        `timeout` bounds the whole call (default: none, profiling takes minutes).
        `warmup_requests` None lets the agent choose (8); 0 means no warm-up.
        """
        self.target.check_socket()
        request = self._profile_request(
            services, warmup_requests, ready_timeout, warmup_request_timeout
        )
        stream = self._rpc.profile_services(request, timeout=timeout, metadata=self._metadata)
        with contextlib.closing(stream):
            yield from stream

    def list_footprints(
        self, *, realm: str = "", service: str = "", timeout: float | None = None
    ) -> list[footprint_pb2.Footprint]:
        """The stored footprints (of `realm` / `service` when given), sorted."""
        request = ListFootprintsRequest(realm=realm, service=service)
        return self._call(
            lambda left: list(
                self._rpc.list_footprints(request, timeout=left, metadata=self._metadata).footprints
            ),
            timeout,
        )

    def forget_footprints(
        self,
        service: str,
        *,
        realm: str = "",
        variety: str | None = None,
        profile: str | None = None,
        timeout: float | None = None,
    ) -> list[footprint_pb2.Footprint]:
        """Deletes a service's footprints (every realm when `realm` is empty; only
        `variety` / `profile` when given) and returns them."""
        request = self._forget_request(service, realm, variety, profile)
        return self._call(
            lambda left: list(
                self._rpc.forget_footprints(
                    request, timeout=left, metadata=self._metadata
                ).forgotten
            ),
            timeout,
        )

    def list_webhook_deliveries(
        self, *, realm: str = "", service: str = "", limit: int = 0, timeout: float | None = None
    ) -> list[webhook_delivery_pb2.WebhookDelivery]:
        """The recorded webhook delivery attempts (of `realm` / `service` when given),
        newest first; `limit` 0 lets the agent choose (50)."""
        request = ListWebhookDeliveriesRequest(realm=realm, service=service, limit=limit)
        return self._call(
            lambda left: list(
                self._rpc.list_webhook_deliveries(
                    request, timeout=left, metadata=self._metadata
                ).deliveries
            ),
            timeout,
        )

    def _call(self, attempt: Callable[[float], T], timeout: float | None) -> T:
        def checked(seconds_left: float) -> T:
            self.target.check_socket()
            return attempt(seconds_left)

        return call_with_retry(
            checked,
            policy=self.retry,
            timeout=self.timeout if timeout is None else timeout,
            idempotent=True,
        )


class AsyncAgentClient(_AgentClientBase):
    """asyncio client for one agent; create it inside the event loop that uses it.

    Use `async with`, or await close(). Arguments as for AgentClient.
    """

    def __init__(
        self,
        target: str | AgentTarget | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        correlation_id: str | None = None,
    ) -> None:
        super().__init__(target, timeout=timeout, retry=retry, correlation_id=correlation_id)
        self._channel = open_aio_channel(self.target)
        self._rpc = AsyncAgentServiceRpc(self._channel, self.target)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel; calls in flight end with CANCELLED, watches end quietly."""
        self._closed = True
        await self._channel.close()

    async def get_host_profile(self, *, timeout: float | None = None) -> HostProfile:
        """The host's profile, collected by the agent now."""

        async def attempt(seconds_left: float) -> HostProfile:
            self.target.check_socket()
            response = await self._rpc.get_host_profile(
                GetHostProfileRequest(), timeout=seconds_left, metadata=self._metadata
            )
            return response.profile

        return await call_with_retry_async(
            attempt,
            policy=self.retry,
            timeout=self.timeout if timeout is None else timeout,
            idempotent=True,
        )

    async def watch_host_profile(
        self, interval: float = DEFAULT_WATCH_INTERVAL, *, timeout: float | None = None
    ) -> AsyncGenerator[HostProfile, None]:
        """As AgentClient.watch_host_profile, for `async for`."""
        request = self._watch_request(interval)
        async for response in self._reopening(
            lambda left: self._rpc.watch_host_profile(
                request, timeout=left, metadata=self._metadata
            ),
            timeout,
        ):
            yield response.profile

    # Provisioning: as AgentClient's, awaited ------------------------------------------

    async def plan_services(
        self,
        services: Sequence[ServiceSpec],
        *,
        scope: service_scope_pb2.ServiceScope.ValueType = DYNAMIC,
        timeout: float | None = None,
    ) -> plan_pb2.Plan:
        request = PlanServicesRequest(services=services, scope=scope)

        async def attempt(left: float) -> plan_pb2.Plan:
            response = await self._rpc.plan_services(request, timeout=left, metadata=self._metadata)
            return response.plan

        return await self._call(attempt, timeout)

    async def apply_services(
        self,
        services: Sequence[ServiceSpec],
        *,
        scope: service_scope_pb2.ServiceScope.ValueType = DYNAMIC,
        timeout: float | None = None,
    ) -> ApplyServicesResponse:
        request = ApplyServicesRequest(services=services, scope=scope)
        return await self._call(
            lambda left: self._rpc.apply_services(request, timeout=left, metadata=self._metadata),
            timeout,
        )

    async def stop_services(
        self, services: Sequence[tuple[str, str]] = (), *, timeout: float | None = None
    ) -> StopServicesResponse:
        request = StopServicesRequest(
            services=[plan_pb2.ServiceRef(realm=r, name=n) for r, n in services]
        )
        return await self._call(
            lambda left: self._rpc.stop_services(request, timeout=left, metadata=self._metadata),
            timeout,
        )

    async def list_services(
        self, *, realm: str = "", timeout: float | None = None
    ) -> ListServicesResponse:
        request = ListServicesRequest(realm=realm)
        return await self._call(
            lambda left: self._rpc.list_services(request, timeout=left, metadata=self._metadata),
            timeout,
        )

    async def watch_services(
        self, *, after_sequence: int = 0, realm: str = "", timeout: float | None = None
    ) -> AsyncGenerator[service_status_pb2.ServiceEvent, None]:
        cursor = after_sequence

        def open_from_cursor(left: float | None) -> AsyncGenerator[WatchServicesResponse, None]:
            request = WatchServicesRequest(after_sequence=cursor, realm=realm)
            return self._rpc.watch_services(request, timeout=left, metadata=self._metadata)

        async for response in self._reopening(open_from_cursor, timeout):
            cursor = response.event.sequence
            yield response.event

    async def service_logs(
        self,
        realm: str,
        name: str,
        *,
        tail_lines: int = 0,
        follow: bool = False,
        timeout: float | None = None,
    ) -> AsyncGenerator[bytes, None]:
        self.target.check_socket()
        request = StreamServiceLogsRequest(
            service=plan_pb2.ServiceRef(realm=realm, name=name),
            tail_lines=tail_lines,
            follow=follow,
        )
        seconds = timeout if timeout is not None else (None if follow else self.timeout)
        stream = self._rpc.stream_service_logs(request, timeout=seconds, metadata=self._metadata)
        async with contextlib.aclosing(stream):
            async for response in stream:
                yield response.data

    # Profiling: as AgentClient's, awaited ----------------------------------------------

    async def profile_services(
        self,
        services: Sequence[ServiceSpec],
        *,
        warmup_requests: int | None = None,
        ready_timeout: float | None = None,
        warmup_request_timeout: float | None = None,
        timeout: float | None = None,
    ) -> AsyncGenerator[ProfileServicesResponse, None]:
        self.target.check_socket()
        request = self._profile_request(
            services, warmup_requests, ready_timeout, warmup_request_timeout
        )
        stream = self._rpc.profile_services(request, timeout=timeout, metadata=self._metadata)
        async with contextlib.aclosing(stream):
            async for response in stream:
                yield response

    async def list_footprints(
        self, *, realm: str = "", service: str = "", timeout: float | None = None
    ) -> list[footprint_pb2.Footprint]:
        request = ListFootprintsRequest(realm=realm, service=service)

        async def attempt(left: float) -> list[footprint_pb2.Footprint]:
            response = await self._rpc.list_footprints(
                request, timeout=left, metadata=self._metadata
            )
            return list(response.footprints)

        return await self._call(attempt, timeout)

    async def forget_footprints(
        self,
        service: str,
        *,
        realm: str = "",
        variety: str | None = None,
        profile: str | None = None,
        timeout: float | None = None,
    ) -> list[footprint_pb2.Footprint]:
        request = self._forget_request(service, realm, variety, profile)

        async def attempt(left: float) -> list[footprint_pb2.Footprint]:
            response = await self._rpc.forget_footprints(
                request, timeout=left, metadata=self._metadata
            )
            return list(response.forgotten)

        return await self._call(attempt, timeout)

    async def list_webhook_deliveries(
        self, *, realm: str = "", service: str = "", limit: int = 0, timeout: float | None = None
    ) -> list[webhook_delivery_pb2.WebhookDelivery]:
        request = ListWebhookDeliveriesRequest(realm=realm, service=service, limit=limit)

        async def attempt(left: float) -> list[webhook_delivery_pb2.WebhookDelivery]:
            response = await self._rpc.list_webhook_deliveries(
                request, timeout=left, metadata=self._metadata
            )
            return list(response.deliveries)

        return await self._call(attempt, timeout)

    async def _call(self, attempt: Callable[[float], Awaitable[T]], timeout: float | None) -> T:
        async def checked(seconds_left: float) -> T:
            self.target.check_socket()
            return await attempt(seconds_left)

        return await call_with_retry_async(
            checked,
            policy=self.retry,
            timeout=self.timeout if timeout is None else timeout,
            idempotent=True,
        )

    async def _reopening(
        self,
        open_stream: Callable[[float | None], AsyncGenerator[T, None]],
        timeout: float | None,
    ) -> AsyncGenerator[T, None]:
        """As AgentClient._reopening, for `async for`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        failures = 0
        while True:
            seconds_left = None if deadline is None else deadline - time.monotonic()
            try:
                self.target.check_socket()
                async with contextlib.aclosing(open_stream(seconds_left)) as stream:
                    async for message in stream:
                        failures = 0
                        yield message
                return
            except OzwaldError as e:
                if self._watch_should_end(e, seconds_left):
                    return
                failures += 1
                if not self._may_reopen(e, failures):
                    raise
                pause = self._pause_before_reopening(failures, deadline)
                if pause is None:
                    return
            await asyncio.sleep(pause)
