"""`VolumeClient`: the agent's encrypted volumes (docs/volumes.md), for the CLI and programs.

Lists volumes, snapshots a versioned volume's working copy into a new immutable version,
lists versions. Keys never pass here. Every call carries a deadline and a correlation id.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Self, TypeVar

from ozwald.agent.v1 import volume_service_pb2 as pb

from ozwald_sdk.channel import open_channel
from ozwald_sdk.metadata import CORRELATION_ID_KEY
from ozwald_sdk.retry import DEFAULT_RETRY, RetryPolicy, call_with_retry
from ozwald_sdk.rpc.volume_service import VolumeServiceRpc
from ozwald_sdk.target import AgentTarget, resolve_target

DEFAULT_TIMEOUT = 120.0  # a snapshot copies the ciphertext
T = TypeVar("T")


class VolumeClient:
    """Blocking client for one agent's encrypted volumes; a context manager."""

    def __init__(
        self,
        target: str | AgentTarget | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        correlation_id: str | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        self.target = target if isinstance(target, AgentTarget) else resolve_target(target)
        self.timeout = timeout
        self.retry = retry
        self.correlation_id = correlation_id or uuid.uuid4().hex
        self._metadata = ((CORRELATION_ID_KEY, self.correlation_id),)
        self._channel = open_channel(self.target)
        self._rpc = VolumeServiceRpc(self._channel, self.target)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def volumes(self, realm: str = "") -> list[pb.VolumeInfo]:
        request = pb.ListVolumesRequest(realm=realm)
        return list(
            self._call(
                lambda t: self._rpc.list_volumes(request, timeout=t, metadata=self._metadata),
                idempotent=True,
            ).volumes
        )

    def snapshot(self, realm: str, volume: str) -> pb.VolumeVersion:
        """Never retried: a retry after a lost answer would make a second version."""
        request = pb.SnapshotVolumeRequest(realm=realm, volume=volume)
        return self._call(
            lambda t: self._rpc.snapshot_volume(request, timeout=t, metadata=self._metadata)
        ).version

    def versions(self, realm: str, volume: str) -> list[pb.VolumeVersion]:
        request = pb.ListVolumeVersionsRequest(realm=realm, volume=volume)
        return list(
            self._call(
                lambda t: self._rpc.list_volume_versions(
                    request, timeout=t, metadata=self._metadata
                ),
                idempotent=True,
            ).versions
        )

    def _call(self, attempt: Callable[[float], T], *, idempotent: bool = False) -> T:
        def checked(seconds_left: float) -> T:
            self.target.check_socket()
            return attempt(seconds_left)

        return call_with_retry(
            checked, policy=self.retry, timeout=self.timeout, idempotent=idempotent
        )
