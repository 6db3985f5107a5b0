"""VolumeService's calls, typed, with explicit timeouts and metadata, raising OzwaldError."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import grpc
from google.protobuf.message import Message
from ozwald.agent.v1 import volume_service_pb2 as pb
from ozwald.agent.v1 import volume_service_pb2_grpc

from ozwald_sdk.errors import error_from_rpc
from ozwald_sdk.metadata import CORRELATION_ID_KEY
from ozwald_sdk.target import AgentTarget

Metadata = tuple[tuple[str, str], ...]
Response = TypeVar("Response", bound=Message)


class VolumeServiceRpc:
    """VolumeService over a sync channel; one method per RPC, no retries, no defaults."""

    def __init__(self, channel: grpc.Channel, target: AgentTarget) -> None:
        self._stub = volume_service_pb2_grpc.VolumeServiceStub(channel)
        self._target = target

    def list_volumes(
        self, request: pb.ListVolumesRequest, *, timeout: float, metadata: Metadata
    ) -> pb.ListVolumesResponse:
        return self._call("ListVolumes", self._stub.ListVolumes, request, timeout, metadata)

    def snapshot_volume(
        self, request: pb.SnapshotVolumeRequest, *, timeout: float, metadata: Metadata
    ) -> pb.SnapshotVolumeResponse:
        return self._call("SnapshotVolume", self._stub.SnapshotVolume, request, timeout, metadata)

    def list_volume_versions(
        self, request: pb.ListVolumeVersionsRequest, *, timeout: float, metadata: Metadata
    ) -> pb.ListVolumeVersionsResponse:
        return self._call(
            "ListVolumeVersions", self._stub.ListVolumeVersions, request, timeout, metadata
        )

    def _call(
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
            correlation_id = next((v for k, v in metadata if k == CORRELATION_ID_KEY), None)
            raise error_from_rpc(
                e,
                method=method,
                target=self._target,
                timeout=timeout,
                correlation_id=correlation_id,
            ) from e
