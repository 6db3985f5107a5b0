"""AuditService's calls, typed, with explicit timeouts and metadata, raising OzwaldError."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import grpc
from google.protobuf.message import Message
from ozwald.orchestrator.v1 import audit_service_pb2 as pb
from ozwald.orchestrator.v1 import audit_service_pb2_grpc

from ozwald_sdk.errors import error_from_rpc
from ozwald_sdk.metadata import CORRELATION_ID_KEY
from ozwald_sdk.target import AgentTarget

Metadata = tuple[tuple[str, str], ...]
Response = TypeVar("Response", bound=Message)


class AuditServiceRpc:
    """AuditService over a sync channel; one method per RPC, no retries, no defaults."""

    def __init__(self, channel: grpc.Channel, target: AgentTarget) -> None:
        self._stub = audit_service_pb2_grpc.AuditServiceStub(channel)
        self._target = target

    def list_audit_records(
        self, request: pb.ListAuditRecordsRequest, *, timeout: float, metadata: Metadata
    ) -> pb.ListAuditRecordsResponse:
        return self._call(
            "ListAuditRecords", self._stub.ListAuditRecords, request, timeout, metadata
        )

    def verify_audit_log(
        self, request: pb.VerifyAuditLogRequest, *, timeout: float, metadata: Metadata
    ) -> pb.VerifyAuditLogResponse:
        return self._call("VerifyAuditLog", self._stub.VerifyAuditLog, request, timeout, metadata)

    def _call(
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
            correlation_id = next((v for k, v in metadata if k == CORRELATION_ID_KEY), None)
            raise error_from_rpc(
                e,
                method=method,
                target=self._target,
                timeout=timeout,
                correlation_id=correlation_id,
            ) from e
