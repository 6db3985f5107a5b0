"""gRPC metadata keys and error codes on the wire that every Ozwald process understands."""

from __future__ import annotations

from ozwald.common.v1.error_reason_pb2 import ErrorReason

# Carried on every call from the CLI through agent, orchestrator and gateway, and
# printed on every log line that belongs to that request.
CORRELATION_ID_KEY = "x-ozwald-correlation-id"

# google.rpc.ErrorInfo.domain of every error an Ozwald server raises.
ERROR_DOMAIN = "ozwald"

# ErrorInfo.metadata key holding the human remedy ("what to do next").
REMEDY_KEY = "remedy"

# Trailing-metadata key gRPC uses to carry a serialized google.rpc.Status.
STATUS_DETAILS_KEY = "grpc-status-details-bin"

_REASON_PREFIX = "ERROR_REASON_"


def reason_name(reason: ErrorReason.ValueType) -> str:
    """The wire form of an ErrorReason in ErrorInfo.reason: its name without the prefix."""
    return ErrorReason.Name(reason).removeprefix(_REASON_PREFIX)
