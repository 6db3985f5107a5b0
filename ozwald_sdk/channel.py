"""gRPC channels to an agent: plain over its unix socket, mutual TLS over TCP."""

from __future__ import annotations

import grpc
import grpc.aio

from ozwald_sdk.target import AgentTarget

# gRPC waits 1 s (then longer) before redialling a failed connection and fails calls
# made meanwhile at once; shorter waits let our own bounded retries reach an agent that
# is just restarting.
CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
)


def open_channel(target: AgentTarget) -> grpc.Channel:
    if target.tls is None:
        return grpc.insecure_channel(target.grpc_target, options=CHANNEL_OPTIONS)
    return grpc.secure_channel(
        target.grpc_target, target.tls.credentials(), options=CHANNEL_OPTIONS
    )


def open_aio_channel(target: AgentTarget) -> grpc.aio.Channel:
    """A grpc.aio channel; call it from inside the event loop that will use it."""
    if target.tls is None:
        return grpc.aio.insecure_channel(target.grpc_target, options=CHANNEL_OPTIONS)
    return grpc.aio.secure_channel(
        target.grpc_target, target.tls.credentials(), options=CHANNEL_OPTIONS
    )
