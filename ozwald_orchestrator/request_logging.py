"""asyncio server interceptor: correlation id on every log line of an operator's call, and
one line per finished call.

Each grpc.aio call runs in its own task, so binding the id in a context variable inside
the handler covers exactly that call. Agents' bidirectional streams are left alone: they
are logged by what they do (events), not per message.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias

import grpc

from ozwald_sdk.logs import correlation_id
from ozwald_sdk.metadata import CORRELATION_ID_KEY

logger = logging.getLogger(__name__)

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


class CorrelationInterceptor(grpc.aio.ServerInterceptor):
    """Binds the caller's correlation id (or a new one) around unary and server-stream
    handlers, and logs each one's end."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        cid = _correlation_id(handler_call_details.invocation_metadata)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _unary(handler.unary_unary, method, cid),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _stream(handler.unary_stream, method, cid),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler


def _correlation_id(metadata: Any) -> str:
    for key, value in metadata or ():
        if key == CORRELATION_ID_KEY and isinstance(value, str) and value:
            return value[:128]
    return uuid.uuid4().hex


def _unary(behaviour: Callable[..., Any], method: str, cid: str) -> Callable[..., Any]:
    async def handle(request: Any, context: Any) -> Any:
        correlation_id.set(cid)
        started = time.monotonic()
        try:
            return await behaviour(request, context)
        finally:
            _log_finished(method, context, started)

    return handle


def _stream(
    behaviour: Callable[..., Any], method: str, cid: str
) -> Callable[..., AsyncIterator[Any]]:
    async def handle(request: Any, context: Any) -> AsyncIterator[Any]:
        correlation_id.set(cid)
        started = time.monotonic()
        try:
            async for response in behaviour(request, context):
                yield response
        finally:
            _log_finished(method, context, started)

    return handle


def _log_finished(method: str, context: Any, started: float) -> None:
    code = context.code()
    if code is None:
        # No status set: it succeeded, unless the client went away (cancel, deadline).
        code = grpc.StatusCode.CANCELLED if context.cancelled() else grpc.StatusCode.OK
    logger.info(
        "rpc %s finished: %s",
        method,
        code.name if isinstance(code, grpc.StatusCode) else code,
        extra={"rpc_method": method, "duration_ms": round((time.monotonic() - started) * 1000, 2)},
    )
