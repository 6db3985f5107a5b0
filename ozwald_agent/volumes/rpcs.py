"""VolumeService: list encrypted volumes, snapshot a versioned one, list its versions."""

from __future__ import annotations

import re
from typing import NoReturn

import grpc
from google.protobuf import timestamp_pb2
from ozwald.agent.v1 import volume_service_pb2 as pb
from ozwald.agent.v1 import volume_service_pb2_grpc
from ozwald.common.v1 import error_reason_pb2

from ozwald_agent.volumes.errors import VolumeError, VolumeNotFoundError
from ozwald_agent.volumes.mounts import VolumeMounts
from ozwald_agent.volumes.versions import VersionInfo
from ozwald_sdk import rpc_status
from ozwald_sdk.config.names import NAME_PATTERN


class VolumeRpcs(volume_service_pb2_grpc.VolumeServiceServicer):
    def __init__(self, mounts: VolumeMounts) -> None:
        self._mounts = mounts

    def ListVolumes(
        self, request: pb.ListVolumesRequest, context: grpc.ServicerContext
    ) -> pb.ListVolumesResponse:
        if request.realm:
            _check_name(context, "realm", request.realm)
        users = self._mounts.users()
        out = pb.ListVolumesResponse()
        for realm, name in self._mounts.volumes(request.realm):
            prefix = self._mounts.layout.run / realm / name
            mounted_by = sorted({u for p, us in users.items() if p.parent == prefix for u in us})
            out.volumes.append(
                pb.VolumeInfo(
                    realm=realm,
                    name=name,
                    version_count=len(self._mounts.versions(realm, name)),
                    mounted_by=mounted_by,
                )
            )
        return out

    def SnapshotVolume(
        self, request: pb.SnapshotVolumeRequest, context: grpc.ServicerContext
    ) -> pb.SnapshotVolumeResponse:
        _check_name(context, "realm", request.realm)
        _check_name(context, "volume", request.volume)
        try:
            info = self._mounts.snapshot(request.realm, request.volume)
        except VolumeNotFoundError as e:
            _not_found(context, request.realm, request.volume, e)
        except (VolumeError, OSError) as e:
            rpc_status.abort(
                context,
                grpc.StatusCode.INTERNAL,
                error_reason_pb2.ERROR_REASON_UNSPECIFIED,
                f"cannot snapshot {request.realm}/{request.volume}: {e}",
                "see the agent's log",
            )
        return pb.SnapshotVolumeResponse(version=_version(info))

    def ListVolumeVersions(
        self, request: pb.ListVolumeVersionsRequest, context: grpc.ServicerContext
    ) -> pb.ListVolumeVersionsResponse:
        _check_name(context, "realm", request.realm)
        _check_name(context, "volume", request.volume)
        try:
            found = self._mounts.versions(request.realm, request.volume)
        except VolumeNotFoundError as e:
            _not_found(context, request.realm, request.volume, e)
        return pb.ListVolumeVersionsResponse(versions=[_version(v) for v in found])


def _version(info: VersionInfo) -> pb.VolumeVersion:
    created = timestamp_pb2.Timestamp()
    created.FromNanoseconds(int(info.created_at * 1e9))
    return pb.VolumeVersion(
        number=info.number,
        created_at=created,
        content_sha256=info.content_sha256,
        size_bytes=info.size_bytes,
        file_count=info.file_count,
    )


def _check_name(context: grpc.ServicerContext, field: str, value: str) -> None:
    if not re.fullmatch(NAME_PATTERN, value):
        rpc_status.abort(
            context,
            grpc.StatusCode.INVALID_ARGUMENT,
            error_reason_pb2.ERROR_REASON_INVALID_ARGUMENT,
            f"{field} {value!r} is not a valid name",
            "names are lowercase letters, digits and -, starting with a letter",
            field=field,
        )


def _not_found(context: grpc.ServicerContext, realm: str, volume: str, e: VolumeError) -> NoReturn:
    rpc_status.abort(
        context,
        grpc.StatusCode.NOT_FOUND,
        error_reason_pb2.ERROR_REASON_VOLUME_NOT_FOUND,
        e.message,
        e.remedy or "list the volumes with `ozwald volumes list`",
        volume=f"{realm}/{volume}",
    )
