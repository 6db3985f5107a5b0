"""FleetService's calls, typed, with explicit timeouts and metadata, raising OzwaldError."""

from __future__ import annotations

from collections.abc import Generator

import grpc
from ozwald.orchestrator.v1 import fleet_service_pb2_grpc
from ozwald.orchestrator.v1.fleet_service_pb2 import (
    ApplyDeploymentsRequest,
    ApplyDeploymentsResponse,
    CordonHostRequest,
    CordonHostResponse,
    DrainHostRequest,
    DrainHostResponse,
    ExplainDeploymentRequest,
    ExplainDeploymentResponse,
    GetDeploymentRequest,
    GetDeploymentResponse,
    GetDriftRequest,
    GetDriftResponse,
    GetRolloutRequest,
    GetRolloutResponse,
    ListDeploymentsRequest,
    ListDeploymentsResponse,
    ListHostsRequest,
    ListHostsResponse,
    ListInstancesRequest,
    ListInstancesResponse,
    PauseRolloutRequest,
    PauseRolloutResponse,
    PlanDeploymentsRequest,
    PlanDeploymentsResponse,
    PromoteRolloutRequest,
    PromoteRolloutResponse,
    ResumeRolloutRequest,
    ResumeRolloutResponse,
    ScaleDeploymentRequest,
    ScaleDeploymentResponse,
    UncordonHostRequest,
    UncordonHostResponse,
    UndoRolloutRequest,
    UndoRolloutResponse,
    WatchEventsRequest,
    WatchEventsResponse,
)

from ozwald_sdk.rpc.calls import Metadata, SyncRpc
from ozwald_sdk.target import AgentTarget


class FleetServiceRpc(SyncRpc):
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

    def scale_deployment(
        self, request: ScaleDeploymentRequest, *, timeout: float, metadata: Metadata
    ) -> ScaleDeploymentResponse:
        return self._unary(
            "ScaleDeployment", self._stub.ScaleDeployment, request, timeout, metadata
        )

    def cordon_host(
        self, request: CordonHostRequest, *, timeout: float, metadata: Metadata
    ) -> CordonHostResponse:
        return self._unary("CordonHost", self._stub.CordonHost, request, timeout, metadata)

    def uncordon_host(
        self, request: UncordonHostRequest, *, timeout: float, metadata: Metadata
    ) -> UncordonHostResponse:
        return self._unary("UncordonHost", self._stub.UncordonHost, request, timeout, metadata)

    def get_rollout(
        self, request: GetRolloutRequest, *, timeout: float, metadata: Metadata
    ) -> GetRolloutResponse:
        return self._unary("GetRollout", self._stub.GetRollout, request, timeout, metadata)

    def pause_rollout(
        self, request: PauseRolloutRequest, *, timeout: float, metadata: Metadata
    ) -> PauseRolloutResponse:
        return self._unary("PauseRollout", self._stub.PauseRollout, request, timeout, metadata)

    def resume_rollout(
        self, request: ResumeRolloutRequest, *, timeout: float, metadata: Metadata
    ) -> ResumeRolloutResponse:
        return self._unary("ResumeRollout", self._stub.ResumeRollout, request, timeout, metadata)

    def promote_rollout(
        self, request: PromoteRolloutRequest, *, timeout: float, metadata: Metadata
    ) -> PromoteRolloutResponse:
        return self._unary("PromoteRollout", self._stub.PromoteRollout, request, timeout, metadata)

    def undo_rollout(
        self, request: UndoRolloutRequest, *, timeout: float, metadata: Metadata
    ) -> UndoRolloutResponse:
        return self._unary("UndoRollout", self._stub.UndoRollout, request, timeout, metadata)

    def drain_host(
        self, request: DrainHostRequest, *, timeout: float, metadata: Metadata
    ) -> DrainHostResponse:
        return self._unary("DrainHost", self._stub.DrainHost, request, timeout, metadata)

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
