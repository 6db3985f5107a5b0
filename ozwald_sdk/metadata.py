"""gRPC metadata keys and error codes on the wire that every Ozwald process understands."""

from __future__ import annotations

import os

from ozwald.common.v1.error_reason_pb2 import ErrorReason

# Carried on every call from the CLI through agent, orchestrator and gateway, and
# printed on every log line that belongs to that request.
CORRELATION_ID_KEY = "x-ozwald-correlation-id"

# The caller's uid, sent by clients on unix sockets, where grpcio hands servers no peer
# credentials: the agent's secrets endpoint scopes by it, the orchestrator's audit log
# names local callers by it ("local:uid=N").
CLIENT_UID_KEY = "x-ozwald-client-uid"

# google.rpc.ErrorInfo.domain of every error an Ozwald server raises.
ERROR_DOMAIN = "ozwald"

# ErrorInfo.metadata key holding the human remedy ("what to do next").
REMEDY_KEY = "remedy"

# Trailing-metadata key gRPC uses to carry a serialized google.rpc.Status.
STATUS_DETAILS_KEY = "grpc-status-details-bin"

_REASON_PREFIX = "ERROR_REASON_"


def client_uid_metadata() -> tuple[tuple[str, str], ...]:
    """The metadata that sends this process's uid (CLIENT_UID_KEY)."""
    return ((CLIENT_UID_KEY, str(os.getuid())),)


def reason_name(reason: ErrorReason.ValueType) -> str:
    """The wire form of an ErrorReason in ErrorInfo.reason: its name without the prefix."""
    return ErrorReason.Name(reason).removeprefix(_REASON_PREFIX)
