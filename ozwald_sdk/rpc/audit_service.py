"""AuditService's calls, typed, with explicit timeouts and metadata, raising OzwaldError."""

from __future__ import annotations

import grpc
from ozwald.orchestrator.v1 import audit_service_pb2 as pb
from ozwald.orchestrator.v1 import audit_service_pb2_grpc

from ozwald_sdk.rpc.calls import Metadata, SyncRpc
from ozwald_sdk.target import AgentTarget


class AuditServiceRpc(SyncRpc):
    """AuditService over a sync channel; one method per RPC, no retries, no defaults."""

    def __init__(self, channel: grpc.Channel, target: AgentTarget) -> None:
        self._stub = audit_service_pb2_grpc.AuditServiceStub(channel)
        self._target = target

    def list_audit_records(
        self, request: pb.ListAuditRecordsRequest, *, timeout: float, metadata: Metadata
    ) -> pb.ListAuditRecordsResponse:
        return self._unary(
            "ListAuditRecords", self._stub.ListAuditRecords, request, timeout, metadata
        )

    def verify_audit_log(
        self, request: pb.VerifyAuditLogRequest, *, timeout: float, metadata: Metadata
    ) -> pb.VerifyAuditLogResponse:
        return self._unary("VerifyAuditLog", self._stub.VerifyAuditLog, request, timeout, metadata)
