"""`VolumeClient`: the agent's encrypted volumes (docs/volumes.md), for the CLI and programs.

Lists volumes, snapshots a versioned volume's working copy into a new immutable version,
lists versions. Keys never pass here. Every call carries a deadline and a correlation id.
"""

from __future__ import annotations

from typing import TypeVar

from ozwald.agent.v1 import volume_service_pb2 as pb

from ozwald_sdk.retry import DEFAULT_RETRY, RetryPolicy
from ozwald_sdk.rpc.volume_service import VolumeServiceRpc
from ozwald_sdk.service_client import ServiceClient
from ozwald_sdk.target import AgentTarget

DEFAULT_TIMEOUT = 120.0  # a snapshot copies the ciphertext
T = TypeVar("T")


class VolumeClient(ServiceClient):
    """Blocking client for one agent's encrypted volumes; a context manager."""

    def __init__(
        self,
        target: str | AgentTarget | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        correlation_id: str | None = None,
    ) -> None:
        super().__init__(
            target,
            timeout=timeout,
            retry=retry,
            correlation_id=correlation_id,
        )
        self._rpc = VolumeServiceRpc(self._channel, self.target)

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
