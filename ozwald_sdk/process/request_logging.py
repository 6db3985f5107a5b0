"""Server interceptors: the caller's correlation id on every log line of its call, and
one line per finished call; for the threaded server (the agent) and for grpc.aio (the
orchestrator).

The id is bound inside the handler itself rather than in `intercept_service`: the
threaded server does not promise to run both on the same thread, and each grpc.aio call
runs in a task of its own, so binding it inside the handler covers exactly that call.
Bidirectional streams (agents' links) are left alone: they are logged by what they do,
not per message.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeAlias

import grpc

from ozwald_sdk.logs import correlation_id
from ozwald_sdk.metadata import CORRELATION_ID_KEY

logger = logging.getLogger(__name__)

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Behaviour: TypeAlias = Callable[..., Any]
Wrap: TypeAlias = Callable[[Behaviour, str, str], Behaviour]
# The longest correlation id taken from a caller; longer ones are cut.
MAX_CORRELATION_ID = 128


class RequestLoggingInterceptor(grpc.ServerInterceptor):
    """For grpc.server: binds the caller's correlation id (or a new one) around unary and
    server-stream handlers, and logs each one's end."""

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Handler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        return _rewrapped(continuation(handler_call_details), handler_call_details, _unary, _stream)


class AsyncRequestLoggingInterceptor(grpc.aio.ServerInterceptor):
    """The same for grpc.aio.server."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        return _rewrapped(handler, handler_call_details, _async_unary, _async_stream)


def _rewrapped(
    handler: Handler | None, details: grpc.HandlerCallDetails, unary: Wrap, stream: Wrap
) -> Handler | None:
    if handler is None:
        return None
    method = details.method
    cid = correlation_id_of(details.invocation_metadata)
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            unary(handler.unary_unary, method, cid),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            stream(handler.unary_stream, method, cid),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return handler


def correlation_id_of(metadata: Any) -> str:
    """The caller's correlation id from the call's metadata, or a new one."""
    for key, value in metadata or ():
        if key == CORRELATION_ID_KEY and isinstance(value, str) and value:
            return value[:MAX_CORRELATION_ID]
    return uuid.uuid4().hex


def _unary(behaviour: Behaviour, method: str, cid: str) -> Behaviour:
    def handle(request: Any, context: grpc.ServicerContext) -> Any:
        token = correlation_id.set(cid)
        started = time.monotonic()
        try:
            return behaviour(request, context)
        finally:
            _log_finished(method, _code(context), not context.is_active(), started)
            correlation_id.reset(token)

    return handle


def _stream(behaviour: Behaviour, method: str, cid: str) -> Behaviour:
    def handle(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        started = time.monotonic()
        responses = behaviour(request, context)
        try:
            while True:
                # A generator resumes on whatever thread asks for the next item: bind
                # the id around each step, not once.
                token = correlation_id.set(cid)
                try:
                    item = next(responses)
                except StopIteration:
                    return
                finally:
                    correlation_id.reset(token)
                yield item
        finally:
            token = correlation_id.set(cid)
            _log_finished(method, _code(context), not context.is_active(), started)
            correlation_id.reset(token)

    return handle


def _code(context: grpc.ServicerContext) -> Any:
    return context.code()  # type: ignore[attr-defined]  # not in types-grpcio


def _async_unary(behaviour: Behaviour, method: str, cid: str) -> Behaviour:
    async def handle(request: Any, context: Any) -> Any:
        correlation_id.set(cid)
        started = time.monotonic()
        try:
            return await behaviour(request, context)
        finally:
            _log_finished(method, context.code(), context.cancelled(), started)

    return handle


def _async_stream(behaviour: Behaviour, method: str, cid: str) -> Behaviour:
    async def handle(request: Any, context: Any) -> AsyncIterator[Any]:
        correlation_id.set(cid)
        started = time.monotonic()
        try:
            async for response in behaviour(request, context):
                yield response
        finally:
            _log_finished(method, context.code(), context.cancelled(), started)

    return handle


def _log_finished(method: str, code: Any, cancelled: bool, started: float) -> None:
    if code is None:
        # No status set: it succeeded, unless the client went away (cancel, deadline).
        code = grpc.StatusCode.CANCELLED if cancelled else grpc.StatusCode.OK
    logger.info(
        "rpc %s finished: %s",
        method,
        code.name if isinstance(code, grpc.StatusCode) else code,
        extra={"rpc_method": method, "duration_ms": round((time.monotonic() - started) * 1000, 2)},
    )
