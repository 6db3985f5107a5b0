"""AgentService's calls, typed, with explicit timeouts and metadata, raising OzwaldError."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, TypeVar

import grpc
import grpc.aio
from google.protobuf.message import Message
from ozwald.agent.v1 import agent_service_pb2_grpc
from ozwald.agent.v1.agent_service_pb2 import (
    ApplyServicesRequest,
    ApplyServicesResponse,
    ForgetFootprintsRequest,
    ForgetFootprintsResponse,
    GetHostProfileRequest,
    GetHostProfileResponse,
    ListFootprintsRequest,
    ListFootprintsResponse,
    ListServicesRequest,
    ListServicesResponse,
    ListWebhookDeliveriesRequest,
    ListWebhookDeliveriesResponse,
    PlanServicesRequest,
    PlanServicesResponse,
    ProfileServicesRequest,
    ProfileServicesResponse,
    StopServicesRequest,
    StopServicesResponse,
    StreamServiceLogsRequest,
    StreamServiceLogsResponse,
    WatchHostProfileRequest,
    WatchHostProfileResponse,
    WatchServicesRequest,
    WatchServicesResponse,
)

from ozwald_sdk.rpc.calls import Metadata, SyncRpc, rpc_error
from ozwald_sdk.target import AgentTarget

Response = TypeVar("Response", bound=Message)


class AgentServiceRpc(SyncRpc):
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
            raise rpc_error(e, "GetHostProfile", self._target, timeout, metadata) from e

    def watch_host_profile(
        self, request: WatchHostProfileRequest, *, timeout: float | None, metadata: Metadata
    ) -> Generator[WatchHostProfileResponse, None, None]:
        """The stream's messages; `timeout` None keeps it open until the generator closes."""
        call = self._stub.WatchHostProfile(request, timeout=timeout, metadata=metadata)
        try:
            yield from call
        except grpc.RpcError as e:
            raise rpc_error(e, "WatchHostProfile", self._target, timeout, metadata) from e
        finally:
            call.cancel()

    def plan_services(
        self, request: PlanServicesRequest, *, timeout: float, metadata: Metadata
    ) -> PlanServicesResponse:
        return self._unary("PlanServices", self._stub.PlanServices, request, timeout, metadata)

    def apply_services(
        self, request: ApplyServicesRequest, *, timeout: float, metadata: Metadata
    ) -> ApplyServicesResponse:
        return self._unary("ApplyServices", self._stub.ApplyServices, request, timeout, metadata)

    def stop_services(
        self, request: StopServicesRequest, *, timeout: float, metadata: Metadata
    ) -> StopServicesResponse:
        return self._unary("StopServices", self._stub.StopServices, request, timeout, metadata)

    def list_services(
        self, request: ListServicesRequest, *, timeout: float, metadata: Metadata
    ) -> ListServicesResponse:
        return self._unary("ListServices", self._stub.ListServices, request, timeout, metadata)

    def watch_services(
        self, request: WatchServicesRequest, *, timeout: float | None, metadata: Metadata
    ) -> Generator[WatchServicesResponse, None, None]:
        return self._stream(
            "WatchServices",
            self._stub.WatchServices(request, timeout=timeout, metadata=metadata),
            timeout,
            metadata,
        )

    def stream_service_logs(
        self, request: StreamServiceLogsRequest, *, timeout: float | None, metadata: Metadata
    ) -> Generator[StreamServiceLogsResponse, None, None]:
        return self._stream(
            "StreamServiceLogs",
            self._stub.StreamServiceLogs(request, timeout=timeout, metadata=metadata),
            timeout,
            metadata,
        )

    def profile_services(
        self, request: ProfileServicesRequest, *, timeout: float | None, metadata: Metadata
    ) -> Generator[ProfileServicesResponse, None, None]:
        return self._stream(
            "ProfileServices",
            self._stub.ProfileServices(request, timeout=timeout, metadata=metadata),
            timeout,
            metadata,
        )

    def list_footprints(
        self, request: ListFootprintsRequest, *, timeout: float, metadata: Metadata
    ) -> ListFootprintsResponse:
        return self._unary("ListFootprints", self._stub.ListFootprints, request, timeout, metadata)

    def forget_footprints(
        self, request: ForgetFootprintsRequest, *, timeout: float, metadata: Metadata
    ) -> ForgetFootprintsResponse:
        return self._unary(
            "ForgetFootprints", self._stub.ForgetFootprints, request, timeout, metadata
        )

    def list_webhook_deliveries(
        self, request: ListWebhookDeliveriesRequest, *, timeout: float, metadata: Metadata
    ) -> ListWebhookDeliveriesResponse:
        return self._unary(
            "ListWebhookDeliveries", self._stub.ListWebhookDeliveries, request, timeout, metadata
        )


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
            raise rpc_error(e, "GetHostProfile", self._target, timeout, metadata) from e

    async def watch_host_profile(
        self, request: WatchHostProfileRequest, *, timeout: float | None, metadata: Metadata
    ) -> AsyncGenerator[WatchHostProfileResponse, None]:
        """The stream's messages; `timeout` None keeps it open until the generator closes."""
        call = self._stub.WatchHostProfile(request, timeout=timeout, metadata=metadata)
        try:
            async for response in call:
                yield response
        except grpc.RpcError as e:
            raise rpc_error(e, "WatchHostProfile", self._target, timeout, metadata) from e
        finally:
            call.cancel()

    async def plan_services(
        self, request: PlanServicesRequest, *, timeout: float, metadata: Metadata
    ) -> PlanServicesResponse:
        response: PlanServicesResponse = await self._unary(
            "PlanServices", self._stub.PlanServices, request, timeout, metadata
        )
        return response

    async def apply_services(
        self, request: ApplyServicesRequest, *, timeout: float, metadata: Metadata
    ) -> ApplyServicesResponse:
        response: ApplyServicesResponse = await self._unary(
            "ApplyServices", self._stub.ApplyServices, request, timeout, metadata
        )
        return response

    async def stop_services(
        self, request: StopServicesRequest, *, timeout: float, metadata: Metadata
    ) -> StopServicesResponse:
        response: StopServicesResponse = await self._unary(
            "StopServices", self._stub.StopServices, request, timeout, metadata
        )
        return response

    async def list_services(
        self, request: ListServicesRequest, *, timeout: float, metadata: Metadata
    ) -> ListServicesResponse:
        response: ListServicesResponse = await self._unary(
            "ListServices", self._stub.ListServices, request, timeout, metadata
        )
        return response

    def watch_services(
        self, request: WatchServicesRequest, *, timeout: float | None, metadata: Metadata
    ) -> AsyncGenerator[WatchServicesResponse, None]:
        call = self._stub.WatchServices(request, timeout=timeout, metadata=metadata)
        return self._stream("WatchServices", call, timeout, metadata)

    def stream_service_logs(
        self, request: StreamServiceLogsRequest, *, timeout: float | None, metadata: Metadata
    ) -> AsyncGenerator[StreamServiceLogsResponse, None]:
        call = self._stub.StreamServiceLogs(request, timeout=timeout, metadata=metadata)
        return self._stream("StreamServiceLogs", call, timeout, metadata)

    def profile_services(
        self, request: ProfileServicesRequest, *, timeout: float | None, metadata: Metadata
    ) -> AsyncGenerator[ProfileServicesResponse, None]:
        call = self._stub.ProfileServices(request, timeout=timeout, metadata=metadata)
        return self._stream("ProfileServices", call, timeout, metadata)

    async def list_footprints(
        self, request: ListFootprintsRequest, *, timeout: float, metadata: Metadata
    ) -> ListFootprintsResponse:
        response: ListFootprintsResponse = await self._unary(
            "ListFootprints", self._stub.ListFootprints, request, timeout, metadata
        )
        return response

    async def forget_footprints(
        self, request: ForgetFootprintsRequest, *, timeout: float, metadata: Metadata
    ) -> ForgetFootprintsResponse:
        response: ForgetFootprintsResponse = await self._unary(
            "ForgetFootprints", self._stub.ForgetFootprints, request, timeout, metadata
        )
        return response

    async def list_webhook_deliveries(
        self, request: ListWebhookDeliveriesRequest, *, timeout: float, metadata: Metadata
    ) -> ListWebhookDeliveriesResponse:
        response: ListWebhookDeliveriesResponse = await self._unary(
            "ListWebhookDeliveries", self._stub.ListWebhookDeliveries, request, timeout, metadata
        )
        return response

    async def _unary(
        self,
        method: str,
        call: Callable[..., Any],
        request: Message,
        timeout: float,
        metadata: Metadata,
    ) -> Any:
        try:
            return await call(request, timeout=timeout, metadata=metadata)
        except grpc.RpcError as e:
            raise rpc_error(e, method, self._target, timeout, metadata) from e

    async def _stream(
        self, method: str, call: Any, timeout: float | None, metadata: Metadata
    ) -> AsyncGenerator[Any, None]:
        try:
            async for response in call:
                yield response
        except grpc.RpcError as e:
            raise rpc_error(e, method, self._target, timeout, metadata) from e
        finally:
            call.cancel()
