"""Ending an asyncio gRPC call with Ozwald's error contract (google.rpc.Status + ErrorInfo).

`ozwald_sdk.rpc_status.abort` serves the synchronous server; grpc.aio's
`abort_with_status` is a coroutine, so the orchestrator awaits this one instead. Both
build the status with the same `status_error`.
"""

from __future__ import annotations

from typing import Any, NoReturn

import grpc
from grpc_status import rpc_status
from ozwald.common.v1.error_reason_pb2 import ErrorReason

from ozwald_sdk.rpc_status import status_error


class OrchestratorError(Exception):
    """A refusal that a servicer turns into a gRPC error with an ErrorInfo."""

    def __init__(
        self,
        code: grpc.StatusCode,
        reason: ErrorReason.ValueType,
        message: str,
        remedy: str,
        **metadata: str,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.remedy = remedy
        self.metadata = metadata


async def abort(
    context: grpc.aio.ServicerContext[Any, Any],
    code: grpc.StatusCode,
    reason: ErrorReason.ValueType,
    message: str,
    remedy: str,
    **metadata: str,
) -> NoReturn:
    """End the call being served with `status_error(...)`; never returns."""
    await context.abort_with_status(
        rpc_status.to_status(status_error(code, reason, message, remedy, **metadata))
    )
    raise AssertionError("abort_with_status returned")


async def abort_with(
    context: grpc.aio.ServicerContext[Any, Any], error: OrchestratorError
) -> NoReturn:
    await abort(context, error.code, error.reason, error.message, error.remedy, **error.metadata)
