"""AgentService's calls, typed, with explicit timeouts and metadata, raising OzwaldError."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator

import grpc
import grpc.aio
from ozwald.agent.v1 import agent_service_pb2_grpc
from ozwald.agent.v1.agent_service_pb2 import (
    GetHostProfileRequest,
    GetHostProfileResponse,
    WatchHostProfileRequest,
    WatchHostProfileResponse,
)

from ozwald_sdk.errors import OzwaldError, error_from_rpc
from ozwald_sdk.metadata import CORRELATION_ID_KEY
from ozwald_sdk.target import AgentTarget

Metadata = tuple[tuple[str, str], ...]


class AgentServiceRpc:
    """AgentService over a sync channel."""

    def __init__(self, channel: grpc.Channel, target: AgentTarget) -> None:
        self._stub = agent_service_pb2_grpc.AgentServiceStub(channel)
        self._target = target

    def get_host_profile(
        self, request: GetHostProfileRequest, *, timeout: float, metadata: Metadata
    ) -> GetHostProfileResponse:
        try:
            return self._stub.GetHostProfile(request, timeout=timeout, metadata=metadata)
        except grpc.RpcError as e:
            raise _error(e, "GetHostProfile", self._target, timeout, metadata) from e

    def watch_host_profile(
        self, request: WatchHostProfileRequest, *, timeout: float | None, metadata: Metadata
    ) -> Generator[WatchHostProfileResponse, None, None]:
        """The stream's messages; `timeout` None keeps it open until the generator closes."""
        call = self._stub.WatchHostProfile(request, timeout=timeout, metadata=metadata)
        try:
            yield from call
        except grpc.RpcError as e:
            raise _error(e, "WatchHostProfile", self._target, timeout, metadata) from e
        finally:
            call.cancel()


class AsyncAgentServiceRpc:
    """AgentService over a grpc.aio channel."""

    def __init__(self, channel: grpc.aio.Channel, target: AgentTarget) -> None:
        self._stub = agent_service_pb2_grpc.AgentServiceStub(channel)
        self._target = target

    async def get_host_profile(
        self, request: GetHostProfileRequest, *, timeout: float, metadata: Metadata
    ) -> GetHostProfileResponse:
        try:
            return await self._stub.GetHostProfile(request, timeout=timeout, metadata=metadata)
        except grpc.RpcError as e:
            raise _error(e, "GetHostProfile", self._target, timeout, metadata) from e

    async def watch_host_profile(
        self, request: WatchHostProfileRequest, *, timeout: float | None, metadata: Metadata
    ) -> AsyncGenerator[WatchHostProfileResponse, None]:
        """The stream's messages; `timeout` None keeps it open until the generator closes."""
        call = self._stub.WatchHostProfile(request, timeout=timeout, metadata=metadata)
        try:
            async for response in call:
                yield response
        except grpc.RpcError as e:
            raise _error(e, "WatchHostProfile", self._target, timeout, metadata) from e
        finally:
            call.cancel()


def _error(
    error: grpc.RpcError,
    method: str,
    target: AgentTarget,
    timeout: float | None,
    metadata: Metadata,
) -> OzwaldError:
    correlation_id = next((v for k, v in metadata if k == CORRELATION_ID_KEY), None)
    return error_from_rpc(
        error,
        method=method,
        target=target,
        timeout=timeout,
        correlation_id=correlation_id,
    )
