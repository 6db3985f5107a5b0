"""What every wrapper here does around a call: pass the timeout and metadata, and turn a
failed call into the OzwaldError the client raises (ozwald_sdk.errors)."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import TypeVar

import grpc
from google.protobuf.message import Message

from ozwald_sdk.errors import OzwaldError, error_from_rpc
from ozwald_sdk.metadata import CORRELATION_ID_KEY
from ozwald_sdk.target import AgentTarget

Metadata = tuple[tuple[str, str], ...]
Response = TypeVar("Response", bound=Message)


class SyncRpc:
    """Base of the wrappers over a sync channel; each sets `_target` and its stub."""

    _target: AgentTarget

    def _unary(
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
            raise rpc_error(e, method, self._target, timeout, metadata) from e

    def _stream(
        self, method: str, call: Iterator[Response], timeout: float | None, metadata: Metadata
    ) -> Generator[Response, None, None]:
        try:
            yield from call
        except grpc.RpcError as e:
            raise rpc_error(e, method, self._target, timeout, metadata) from e
        finally:
            # A reader that stops early ends the call rather than leaving it open.
            cancel = getattr(call, "cancel", None)
            if cancel is not None:
                cancel()


def rpc_error(
    error: grpc.RpcError,
    method: str,
    target: AgentTarget,
    timeout: float | None,
    metadata: Metadata,
) -> OzwaldError:
    """The OzwaldError for `error`, naming the call's correlation id from `metadata`."""
    correlation_id = next((v for k, v in metadata if k == CORRELATION_ID_KEY), None)
    return error_from_rpc(
        error, method=method, target=target, timeout=timeout, correlation_id=correlation_id
    )
