"""An EffectiveService as the ozwald.common.v1.ServiceSpec message agents admit and run.

Its fingerprint is `ozwald_sdk.fingerprint.fingerprint` of that message, the one
definition the agent uses too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from google.protobuf.duration_pb2 import Duration
from ozwald.common.v1 import gpu_pb2, service_spec_pb2
from ozwald.common.v1.gpu_pb2 import GpuVendor
from ozwald.common.v1.service_spec_pb2 import RestartPolicyKind, VolumeKind

if TYPE_CHECKING:
    from ozwald_sdk.config.effective import (
        EffectiveHealthCheck,
        EffectiveMount,
        EffectiveOpenAi,
        EffectiveResources,
        EffectiveService,
    )

_VOLUME_KINDS: Final[dict[str, VolumeKind.ValueType]] = {
    "bind": service_spec_pb2.VOLUME_KIND_BIND,
    "named": service_spec_pb2.VOLUME_KIND_NAMED,
    "tmpfs": service_spec_pb2.VOLUME_KIND_TMPFS,
    "encrypted": service_spec_pb2.VOLUME_KIND_ENCRYPTED,
    "encrypted-tmp": service_spec_pb2.VOLUME_KIND_ENCRYPTED_TMP,
    "versioned": service_spec_pb2.VOLUME_KIND_VERSIONED,
}
_BACKENDS: Final[dict[str, service_spec_pb2.EncryptionBackend.ValueType]] = {
    "gocryptfs": service_spec_pb2.ENCRYPTION_BACKEND_GOCRYPTFS,
    "luks2": service_spec_pb2.ENCRYPTION_BACKEND_LUKS2,
}
_RESTART_KINDS: Final[dict[str, RestartPolicyKind.ValueType]] = {
    "no": service_spec_pb2.RESTART_POLICY_KIND_NO,
    "always": service_spec_pb2.RESTART_POLICY_KIND_ALWAYS,
    "on-failure": service_spec_pb2.RESTART_POLICY_KIND_ON_FAILURE,
    "unless-stopped": service_spec_pb2.RESTART_POLICY_KIND_UNLESS_STOPPED,
}
_OPENAI_APIS: Final[dict[str, service_spec_pb2.OpenAiApi.ValueType]] = {
    "embeddings": service_spec_pb2.OPEN_AI_API_EMBEDDINGS,
    "completions": service_spec_pb2.OPEN_AI_API_COMPLETIONS,
    "chat": service_spec_pb2.OPEN_AI_API_CHAT,
}
# "files" is the unset value, so services that had lockers before the delivery mode
# existed keep their fingerprints (and keep running across the upgrade).
_SECRET_DELIVERY: Final[dict[str, service_spec_pb2.SecretDelivery.ValueType]] = {
    "files": service_spec_pb2.SECRET_DELIVERY_UNSPECIFIED,
    "endpoint": service_spec_pb2.SECRET_DELIVERY_ENDPOINT,
    "both": service_spec_pb2.SECRET_DELIVERY_BOTH,
}
_VENDORS: Final[dict[str, GpuVendor.ValueType]] = {
    "nvidia": gpu_pb2.GPU_VENDOR_NVIDIA,
    "amd": gpu_pb2.GPU_VENDOR_AMD,
}


def to_service_spec(service: EffectiveService) -> service_spec_pb2.ServiceSpec:
    """The contract form of `service`: what the SDK sends an agent to plan and apply."""
    return service_spec_pb2.ServiceSpec(
        realm=service.realm,
        name=service.name,
        variety=service.variety or "",
        profile=service.profile or "",
        image=service.image,
        entrypoint=service.entrypoint or (),
        command=service.command or (),
        environment=service.environment,
        env_files=[str(path) for path in service.env_files],
        volumes=[_mount(mount) for mount in service.volumes],
        # The shared network is every service's; the spec lists only declared ones.
        networks=[n.name for n in service.networks if n.name is not None],
        connector_port=service.connector_port or 0,
        health_check=_health_check(service.health_check),
        resources=_resources(service.resources),
        restart_policy=service_spec_pb2.RestartPolicy(
            kind=_RESTART_KINDS[service.restart.policy],
            max_retries=service.restart.max_retries or 0,
        ),
        depends_on=service.depends_on,
        labels=service.labels,
        persistent=service.persistent,
        portals=[
            service_spec_pb2.Portal(
                name=p.name,
                host_ip=p.host_ip,
                host_port=p.host_port,
                container_port=p.container_port,
            )
            for p in service.portals
        ],
        openai=_openai(service.openai),
        webhooks=[hook.to_proto() for hook in service.webhooks],
        secret_lockers=[
            service_spec_pb2.SecretLockerRef(locker=name) for name in service.secret_lockers
        ],
        secret_delivery=_SECRET_DELIVERY[service.secrets_delivery]
        if service.secret_lockers
        else service_spec_pb2.SECRET_DELIVERY_UNSPECIFIED,
    )


def _openai(openai: EffectiveOpenAi | None) -> service_spec_pb2.OpenAiEndpoint | None:
    if openai is None:
        return None
    return service_spec_pb2.OpenAiEndpoint(api=_OPENAI_APIS[openai.api], model=openai.model or "")


def _mount(mount: EffectiveMount) -> service_spec_pb2.VolumeMount:
    if mount.backend is not None:
        return service_spec_pb2.VolumeMount(
            kind=_VOLUME_KINDS[mount.type],
            target=mount.target,
            read_only=mount.read_only,
            encrypted=service_spec_pb2.EncryptedVolume(
                volume=mount.volume or "",
                backend=_BACKENDS[mount.backend],
                key_locker=mount.key_locker or "",
                key_name=mount.key_name or "",
                version=mount.version or 0,
                working_copy=mount.working_copy,
                size_bytes=mount.size or 0,
            ),
        )
    return service_spec_pb2.VolumeMount(
        kind=_VOLUME_KINDS[mount.type],
        source=mount.source or "",
        target=mount.target,
        read_only=mount.read_only,
        tmpfs_size_bytes=mount.size or 0,
    )


def _health_check(check: EffectiveHealthCheck | None) -> service_spec_pb2.HealthCheck | None:
    if check is None:
        return None
    out = service_spec_pb2.HealthCheck(
        start_period=_duration(check.start_period),
        interval=_duration(check.interval),
        timeout=_duration(check.timeout),
        retries=check.retries,
    )
    if check.http is not None:
        out.http.CopyFrom(service_spec_pb2.HttpProbe(path=check.http.path, port=check.http.port))
    else:
        out.command.CopyFrom(service_spec_pb2.CommandProbe(argv=check.command or ()))
    return out


def _resources(resources: EffectiveResources) -> service_spec_pb2.ResourceRequirements:
    gpus = resources.gpus
    return service_spec_pb2.ResourceRequirements(
        gpus=service_spec_pb2.GpuRequirement(
            count=gpus.count,
            vendor=_VENDORS[gpus.vendor],
            device_ids=gpus.ids,
            vram_per_gpu_bytes=gpus.vram_per_gpu or 0,
        )
        if gpus is not None
        else None,
        memory_bytes=resources.memory or 0,
        cpus=resources.cpus or 0.0,
        shm_size_bytes=resources.shm_size or 0,
    )


def _duration(seconds: float) -> Duration:
    duration = Duration()
    duration.FromNanoseconds(round(seconds * 1e9))
    return duration
