"""Server interceptor: correlation id and one log line per finished RPC."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeAlias

import grpc

from ozwald_sdk.logs import correlation_id
from ozwald_sdk.metadata import CORRELATION_ID_KEY

logger = logging.getLogger(__name__)

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


class RequestLoggingInterceptor(grpc.ServerInterceptor):
    """Binds the caller's correlation id (or a new one) to the handler's context.

    The id is bound inside the handler itself rather than in `intercept_service`,
    because gRPC does not promise to run both on the same thread.
    """

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Handler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
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


def _unary(
    behaviour: Callable[[Any, grpc.ServicerContext], Any], method: str, cid: str
) -> Callable[[Any, grpc.ServicerContext], Any]:
    def handle(request: Any, context: grpc.ServicerContext) -> Any:
        token = correlation_id.set(cid)
        started = time.monotonic()
        try:
            return behaviour(request, context)
        finally:
            _log_finished(method, context, started)
            correlation_id.reset(token)

    return handle


def _stream(
    behaviour: Callable[[Any, grpc.ServicerContext], Iterator[Any]], method: str, cid: str
) -> Callable[[Any, grpc.ServicerContext], Iterator[Any]]:
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
            _log_finished(method, context, started)
            correlation_id.reset(token)

    return handle


def _log_finished(method: str, context: grpc.ServicerContext, started: float) -> None:
    code = context.code()  # type: ignore[attr-defined]  # not in types-grpcio
    if code is None:
        # No status set: it succeeded, unless the client went away (cancel, deadline).
        code = grpc.StatusCode.OK if context.is_active() else grpc.StatusCode.CANCELLED
    logger.info(
        "rpc %s finished: %s",
        method,
        code.name if isinstance(code, grpc.StatusCode) else code,
        extra={"rpc_method": method, "duration_ms": round((time.monotonic() - started) * 1000, 2)},
    )
