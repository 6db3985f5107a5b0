"""FleetService's calls, typed, with explicit timeouts and metadata, raising OzwaldError."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import TypeVar

import grpc
from google.protobuf.message import Message
from ozwald.orchestrator.v1 import fleet_service_pb2_grpc
from ozwald.orchestrator.v1.fleet_service_pb2 import (
    ApplyDeploymentsRequest,
    ApplyDeploymentsResponse,
    ExplainDeploymentRequest,
    ExplainDeploymentResponse,
    GetDeploymentRequest,
    GetDeploymentResponse,
    GetDriftRequest,
    GetDriftResponse,
    ListDeploymentsRequest,
    ListDeploymentsResponse,
    ListHostsRequest,
    ListHostsResponse,
    ListInstancesRequest,
    ListInstancesResponse,
    PlanDeploymentsRequest,
    PlanDeploymentsResponse,
    WatchEventsRequest,
    WatchEventsResponse,
)

from ozwald_sdk.errors import OzwaldError, error_from_rpc
from ozwald_sdk.metadata import CORRELATION_ID_KEY
from ozwald_sdk.target import AgentTarget

Metadata = tuple[tuple[str, str], ...]
Response = TypeVar("Response", bound=Message)


class FleetServiceRpc:
    """FleetService over a sync channel."""

    def __init__(self, channel: grpc.Channel, target: AgentTarget) -> None:
        self._stub = fleet_service_pb2_grpc.FleetServiceStub(channel)
        self._target = target

    def plan_deployments(
        self, request: PlanDeploymentsRequest, *, timeout: float, metadata: Metadata
    ) -> PlanDeploymentsResponse:
        return self._unary(
            "PlanDeployments", self._stub.PlanDeployments, request, timeout, metadata
        )

    def apply_deployments(
        self, request: ApplyDeploymentsRequest, *, timeout: float, metadata: Metadata
    ) -> ApplyDeploymentsResponse:
        return self._unary(
            "ApplyDeployments", self._stub.ApplyDeployments, request, timeout, metadata
        )

    def list_deployments(
        self, request: ListDeploymentsRequest, *, timeout: float, metadata: Metadata
    ) -> ListDeploymentsResponse:
        return self._unary(
            "ListDeployments", self._stub.ListDeployments, request, timeout, metadata
        )

    def get_deployment(
        self, request: GetDeploymentRequest, *, timeout: float, metadata: Metadata
    ) -> GetDeploymentResponse:
        return self._unary("GetDeployment", self._stub.GetDeployment, request, timeout, metadata)

    def list_instances(
        self, request: ListInstancesRequest, *, timeout: float, metadata: Metadata
    ) -> ListInstancesResponse:
        return self._unary("ListInstances", self._stub.ListInstances, request, timeout, metadata)

    def list_hosts(
        self, request: ListHostsRequest, *, timeout: float, metadata: Metadata
    ) -> ListHostsResponse:
        return self._unary("ListHosts", self._stub.ListHosts, request, timeout, metadata)

    def explain_deployment(
        self, request: ExplainDeploymentRequest, *, timeout: float, metadata: Metadata
    ) -> ExplainDeploymentResponse:
        return self._unary(
            "ExplainDeployment", self._stub.ExplainDeployment, request, timeout, metadata
        )

    def get_drift(
        self, request: GetDriftRequest, *, timeout: float, metadata: Metadata
    ) -> GetDriftResponse:
        return self._unary("GetDrift", self._stub.GetDrift, request, timeout, metadata)

    def watch_events(
        self, request: WatchEventsRequest, *, timeout: float | None, metadata: Metadata
    ) -> Generator[WatchEventsResponse, None, None]:
        """The stream's messages; `timeout` None keeps it open until the generator closes."""
        return self._stream(
            "WatchEvents",
            self._stub.WatchEvents(request, timeout=timeout, metadata=metadata),
            timeout,
            metadata,
        )

    def _unary(
        self,
        method: str,
        call: Callable[..., Response],
        request: Message,
        timeout: float,
        metadata: Metadata,
    ) -> Response:
        try:
            return call(request, timeout=timeout, metadata=metadata)
        except grpc.RpcError as e:
            raise _error(e, method, self._target, timeout, metadata) from e

    def _stream(
        self, method: str, call: Iterator[Response], timeout: float | None, metadata: Metadata
    ) -> Generator[Response, None, None]:
        try:
            yield from call
        except grpc.RpcError as e:
            raise _error(e, method, self._target, timeout, metadata) from e
        finally:
            cancel = getattr(call, "cancel", None)
            if cancel is not None:
                cancel()


def _error(
    error: grpc.RpcError,
    method: str,
    target: AgentTarget,
    timeout: float | None,
    metadata: Metadata,
) -> OzwaldError:
    correlation_id = next((v for k, v in metadata if k == CORRELATION_ID_KEY), None)
    return error_from_rpc(
        error, method=method, target=target, timeout=timeout, correlation_id=correlation_id
    )
