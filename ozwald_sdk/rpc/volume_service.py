"""VolumeService's calls, typed, with explicit timeouts and metadata, raising OzwaldError."""

from __future__ import annotations

import grpc
from ozwald.agent.v1 import volume_service_pb2 as pb
from ozwald.agent.v1 import volume_service_pb2_grpc

from ozwald_sdk.rpc.calls import Metadata, SyncRpc
from ozwald_sdk.target import AgentTarget


class VolumeServiceRpc(SyncRpc):
    """VolumeService over a sync channel; one method per RPC, no retries, no defaults."""

    def __init__(self, channel: grpc.Channel, target: AgentTarget) -> None:
        self._stub = volume_service_pb2_grpc.VolumeServiceStub(channel)
        self._target = target

    def list_volumes(
        self, request: pb.ListVolumesRequest, *, timeout: float, metadata: Metadata
    ) -> pb.ListVolumesResponse:
        return self._unary("ListVolumes", self._stub.ListVolumes, request, timeout, metadata)

    def snapshot_volume(
        self, request: pb.SnapshotVolumeRequest, *, timeout: float, metadata: Metadata
    ) -> pb.SnapshotVolumeResponse:
        return self._unary("SnapshotVolume", self._stub.SnapshotVolume, request, timeout, metadata)

    def list_volume_versions(
        self, request: pb.ListVolumeVersionsRequest, *, timeout: float, metadata: Metadata
    ) -> pb.ListVolumeVersionsResponse:
        return self._unary(
            "ListVolumeVersions", self._stub.ListVolumeVersions, request, timeout, metadata
        )
