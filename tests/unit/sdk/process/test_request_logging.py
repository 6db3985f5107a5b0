"""The grpc.aio interceptor (the orchestrator's): the caller's correlation id is on the
log lines of its call, and each call's end is logged with its status."""

from __future__ import annotations

import logging
from typing import Any

import grpc
import pytest

from ozwald_sdk.logs import correlation_id
from ozwald_sdk.metadata import CORRELATION_ID_KEY
from ozwald_sdk.process.request_logging import AsyncRequestLoggingInterceptor

LOGGER = "ozwald_sdk.process.request_logging"


def _identity(data: bytes) -> bytes:
    return data


@pytest.mark.asyncio
async def test_the_correlation_id_is_bound_and_each_call_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    async def echo(request: bytes, context: Any) -> bytes:
        seen.append(correlation_id.get() or "")
        return request

    async def refuse(request: bytes, context: Any) -> bytes:
        await context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
        raise AssertionError("abort returned")

    async def count(request: bytes, context: Any) -> Any:
        for i in range(3):
            seen.append(correlation_id.get() or "")
            yield bytes([i])

    handlers = grpc.method_handlers_generic_handler(
        "t.S",
        {
            "Echo": grpc.unary_unary_rpc_method_handler(echo, _identity, _identity),
            "Refuse": grpc.unary_unary_rpc_method_handler(refuse, _identity, _identity),
            "Count": grpc.unary_stream_rpc_method_handler(count, _identity, _identity),
        },
    )
    server = grpc.aio.server(interceptors=[AsyncRequestLoggingInterceptor()])
    server.add_generic_rpc_handlers([handlers])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    caplog.set_level(logging.INFO, logger=LOGGER)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            metadata = ((CORRELATION_ID_KEY, "cid-1"),)
            echo_call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
                "/t.S/Echo"
            )
            refuse_call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
                "/t.S/Refuse"
            )
            count_call: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(
                "/t.S/Count"
            )
            assert await echo_call(b"x", metadata=metadata) == b"x"
            with pytest.raises(grpc.aio.AioRpcError):
                await refuse_call(b"x", metadata=metadata)
            streamed = count_call(b"", metadata=(("x", "y"),))
            assert [r async for r in streamed] == [b"\x00", b"\x01", b"\x02"]
    finally:
        await server.stop(0)

    assert seen[0] == "cid-1"
    # A call without an id gets a fresh one, the same on every step of its stream.
    assert len(set(seen[1:])) == 1 and seen[1] not in ("cid-1", "-")
    finished = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert finished == [
        "rpc /t.S/Echo finished: OK",
        "rpc /t.S/Refuse finished: NOT_FOUND",
        "rpc /t.S/Count finished: OK",
    ]
