"""Why the Docker Engine could not be reached, read from what the docker SDK raised."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import TypeAlias

import docker.errors
import requests.exceptions
from ozwald.common.v1 import container_runtime_pb2 as runtime_pb2

Reason: TypeAlias = runtime_pb2.ContainerRuntimeUnreachableReason.ValueType

# First match wins, walking from the outermost exception inwards. urllib3's own classes are
# left out on purpose: its NewConnectionError (a refused connection) subclasses its
# ConnectTimeoutError; the OS error it wraps says what really happened.
_REASONS: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], Reason], ...] = (
    (
        (TimeoutError, requests.exceptions.Timeout),
        runtime_pb2.CONTAINER_RUNTIME_UNREACHABLE_REASON_TIMEOUT,
    ),
    (docker.errors.APIError, runtime_pb2.CONTAINER_RUNTIME_UNREACHABLE_REASON_API_ERROR),
    (FileNotFoundError, runtime_pb2.CONTAINER_RUNTIME_UNREACHABLE_REASON_SOCKET_MISSING),
    (PermissionError, runtime_pb2.CONTAINER_RUNTIME_UNREACHABLE_REASON_PERMISSION_DENIED),
    (
        ConnectionRefusedError,
        runtime_pb2.CONTAINER_RUNTIME_UNREACHABLE_REASON_CONNECTION_REFUSED,
    ),
    (socket.gaierror, runtime_pb2.CONTAINER_RUNTIME_UNREACHABLE_REASON_BAD_ADDRESS),
)


def unreachable_reason(error: BaseException) -> Reason:
    """The most specific reason found in `error` and everything it wraps.

    The SDK wraps the OS's error several levels deep (DockerException <- requests
    ConnectionError <- urllib3 ProtocolError <- FileNotFoundError), so walk them all.
    Anything unrecognised is the engine's (or the transport's) own error: API_ERROR.
    """
    for cause in _wrapped(error):
        for types, reason in _REASONS:
            if isinstance(cause, types):
                return reason
    return runtime_pb2.CONTAINER_RUNTIME_UNREACHABLE_REASON_API_ERROR


def _wrapped(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    queue = [error]
    while queue:
        current = queue.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        inner = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        queue.extend(e for e in (*inner, *current.args) if isinstance(e, BaseException))
