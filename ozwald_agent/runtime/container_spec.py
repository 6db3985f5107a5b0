"""ServiceSpec + GPU assignment -> the docker SDK's `containers.create` arguments. Pure.

Every default below is a decision about how Ozwald runs a service; the reasons:

- Restart policy `no` in Docker. The agent heals services itself: it must see every exit
  (through the engine's events) to count restarts, apply exponential backoff, tell "died
  while starting" (failed, with its last log lines) from "crashed after being ready"
  (restart), and stop at `max_retries`. A Docker restart policy would restart behind its
  back, without backoff or a failed state.
- `cap_drop ALL` and `no-new-privileges`: a model server needs no capability; an image
  that does (binding a port below 1024 as root, chown at start) must be fixed, not the
  default weakened. No `seccomp=unconfined`, not even for AMD.
- `pids_limit` 16384 (`DEFAULT_PIDS_LIMIT`): PyTorch and vLLM start many threads (each
  counts against the limit): about two per core per worker process, so 8 tensor-parallel
  workers on a 256-thread host stay near 4,000; 16384 leaves room for that and still stops
  a fork bomb long before the host's pid space (4,194,304 on 64-bit kernels) is exhausted.
- `nofile` 65536 soft and hard: vLLM raises its soft limit to 65535 at start (one socket
  per streaming client); giving it up front avoids the warning and works under no-new-
  privileges. `DockerRuntime` lowers it to the engine's own hard limit where that is
  smaller (see `engine_limits.py`); None leaves the engine's default.
- Memory: `memswap_limit` equals `mem_limit`, so a service never swaps: admission counts
  memory, and a model server swapping is worse than one restarted by the OOM killer.
- `init`: Docker's tini as PID 1 reaps zombies (vLLM spawns worker processes) and passes
  SIGTERM on, so `stop` is graceful for images whose entrypoint ignores signals as PID 1.
- Logs: json-file rotated at 50 MB x 5 unless the caller says otherwise, so a chatty server
  cannot fill the disk of a box nobody watches, and `docker logs` / `logs()` still work.
- Portals bind 127.0.0.1 unless the spec names an address: exposing a model server to the
  network is a choice to write down, not a default.
- GPU pinning: NVIDIA by one device request listing every assigned UUID; AMD by device
  nodes (`/dev/kfd` plus the GPU's own render node only) and the nodes' host group ids
  (see `gpus.py`). `NVIDIA_VISIBLE_DEVICES` is set too (to the UUIDs, or `void` for
  containers without NVIDIA GPUs): CUDA base images set it to `all`, which on a host whose
  default runtime is `nvidia` would hand every GPU to every container. The agent's value
  wins over the spec's `environment`: pinning is admission's decision.
- Networks: the realm's shared network at create (Docker 20.10, API 1.41, takes only one
  network at create), declared networks connected before start; on each the service name
  is a DNS alias, so services reach each other as `http://<service>:<port>`.

Environment values can be secrets: `ContainerPlan` never prints them (its repr hides the
create arguments) and nothing here logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import docker.types
from ozwald.common.v1 import gpu_pb2, service_spec_pb2

from ozwald_agent.runtime import labels as lbl
from ozwald_agent.runtime.errors import InvalidSpecError
from ozwald_agent.runtime.gpus import GpuAssignment
from ozwald_agent.runtime.naming import (
    DEFAULT_PREFIX,
    container_name,
    declared_network_name,
    is_dns_label,
    realm_network_name,
)

DEFAULT_PIDS_LIMIT = 16384
DEFAULT_NOFILE_LIMIT = 65536
DEFAULT_PORTAL_HOST_IP = "127.0.0.1"
NVIDIA_VISIBLE_DEVICES = "NVIDIA_VISIBLE_DEVICES"
# EndpointConfig only checks the version for options Ozwald does not use (MAC address,
# driver options); aliases work from API 1.22 on. 1.41 is Docker 20.10, the oldest engine
# Ozwald supports.
_ENDPOINT_API_VERSION = "1.41"
_MAX_PORT = 65535


@dataclass(frozen=True)
class RuntimeSettings:
    """What the agent adds to every container it creates.

    `agent_id` marks ownership (see `labels.py`); `name_prefix` keeps simulated hosts on
    one engine apart. `log_max_size` None keeps the engine's default log driver;
    `nofile_limit` None the engine's default open-files limit.
    """

    agent_id: str
    name_prefix: str = DEFAULT_PREFIX
    pids_limit: int = DEFAULT_PIDS_LIMIT
    nofile_limit: int | None = DEFAULT_NOFILE_LIMIT
    log_max_size: str | None = "50m"
    log_max_files: int = 5

    def __post_init__(self) -> None:
        if not self.agent_id:
            raise InvalidSpecError("the agent id is empty; every container must name its agent")


@dataclass(frozen=True)
class NetworkWant:
    """A network the container joins: its Docker name, and whose it is."""

    name: str
    realm: str
    declared: str = ""  # the declared network's name; empty for the realm's shared network


@dataclass(frozen=True)
class VolumeWant:
    """A named volume the container mounts; created (labelled) when missing."""

    name: str
    realm: str


@dataclass(frozen=True)
class ContainerPlan:
    """Everything needed to create one service's container.

    `networks[0]` is joined at create; `networks[1:]` are connected before start, each with
    `aliases`. `create_kwargs` goes to `client.containers.create(**create_kwargs)`.
    """

    name: str
    service: lbl.ServiceLabels
    networks: tuple[NetworkWant, ...]
    aliases: tuple[str, ...]
    volumes: tuple[VolumeWant, ...]
    create_kwargs: dict[str, Any] = field(repr=False)

    @property
    def late_networks(self) -> tuple[NetworkWant, ...]:
        return self.networks[1:]


def build_container_plan(
    spec: service_spec_pb2.ServiceSpec,
    settings: RuntimeSettings,
    *,
    fingerprint: str,
    env_file_values: Mapping[str, str] | None = None,
    gpus: GpuAssignment | None = None,
    gpu_group_ids: tuple[int, ...] = (),
) -> ContainerPlan:
    """The plan for `spec`; InvalidSpecError when it cannot be run as given.

    `env_file_values` is what the spec's env files set, already read and merged
    (`env_files.read_env_files`); `gpu_group_ids` the host groups owning an AMD
    assignment's device nodes (`gpus.device_group_ids`).
    """
    if not spec.image:
        raise InvalidSpecError(f"service {spec.realm}/{spec.name} names no image")
    if not fingerprint:
        raise InvalidSpecError(f"service {spec.realm}/{spec.name}: the fingerprint is empty")
    _check_gpus(spec, gpus)
    service = lbl.ServiceLabels(
        agent_id=settings.agent_id,
        realm=spec.realm,
        service=spec.name,
        fingerprint=fingerprint,
        variety=spec.variety,
        profile=spec.profile,
        persistent=spec.persistent,
        gpus=gpus.uuids if gpus else (),
    )
    name = container_name(spec.realm, spec.name, settings.name_prefix)
    networks = _networks(spec, settings.name_prefix)
    aliases = (spec.name,)
    mounts, volumes = _mounts(spec)
    kwargs: dict[str, Any] = {
        "image": spec.image,
        "name": name,
        "labels": _labels(spec, service),
        "environment": _environment(spec, env_file_values or {}, gpus),
        "mounts": mounts,
        "network": networks[0].name,
        "networking_config": {
            networks[0].name: docker.types.EndpointConfig(
                _ENDPOINT_API_VERSION, aliases=list(aliases)
            )
        },
        "restart_policy": {"Name": "no"},
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "init": True,
        "pids_limit": settings.pids_limit,
    }
    if settings.nofile_limit is not None:
        kwargs["ulimits"] = [
            docker.types.Ulimit(
                name="nofile", soft=settings.nofile_limit, hard=settings.nofile_limit
            )
        ]
    if spec.entrypoint:
        kwargs["entrypoint"] = list(spec.entrypoint)
    if spec.command:
        kwargs["command"] = list(spec.command)
    if is_dns_label(spec.name):
        kwargs["hostname"] = spec.name
    if settings.log_max_size is not None:
        kwargs["log_config"] = docker.types.LogConfig(
            type=docker.types.LogConfig.types.JSON,
            config={"max-size": settings.log_max_size, "max-file": str(settings.log_max_files)},
        )
    ports = _port_bindings(spec)
    if ports:
        kwargs["ports"] = ports
    kwargs.update(_resources(spec.resources))
    kwargs.update(_gpu_kwargs(gpus, gpu_group_ids))
    return ContainerPlan(
        name=name,
        service=service,
        networks=networks,
        aliases=aliases,
        volumes=volumes,
        create_kwargs=kwargs,
    )


def _labels(spec: service_spec_pb2.ServiceSpec, service: lbl.ServiceLabels) -> dict[str, str]:
    reserved = lbl.reserved_keys(list(spec.labels))
    if reserved:
        raise InvalidSpecError(
            f"service {spec.realm}/{spec.name} sets labels reserved for Ozwald: "
            f"{', '.join(reserved)}",
            remedy=f"rename them: keys starting with {lbl.PREFIX!r} are the agent's own",
        )
    return {**dict(spec.labels), **service.to_labels()}


def _environment(
    spec: service_spec_pb2.ServiceSpec,
    env_file_values: Mapping[str, str],
    gpus: GpuAssignment | None,
) -> dict[str, str]:
    environment = {**env_file_values, **dict(spec.environment)}
    if gpus is not None and gpus.vendor == gpu_pb2.GPU_VENDOR_NVIDIA:
        environment[NVIDIA_VISIBLE_DEVICES] = ",".join(gpus.uuids)
    else:
        environment[NVIDIA_VISIBLE_DEVICES] = "void"
    return environment


def _networks(spec: service_spec_pb2.ServiceSpec, prefix: str) -> tuple[NetworkWant, ...]:
    wants = [NetworkWant(realm_network_name(spec.realm, prefix), spec.realm)]
    for declared in dict.fromkeys(spec.networks):
        wants.append(
            NetworkWant(declared_network_name(spec.realm, declared, prefix), spec.realm, declared)
        )
    return tuple(wants)


def _mounts(
    spec: service_spec_pb2.ServiceSpec,
) -> tuple[list[docker.types.Mount], tuple[VolumeWant, ...]]:
    mounts: list[docker.types.Mount] = []
    volumes: dict[str, VolumeWant] = {}
    targets: set[str] = set()
    for volume in spec.volumes:
        where = f"service {spec.realm}/{spec.name}, volume at {volume.target!r}"
        if not volume.target.startswith("/"):
            raise InvalidSpecError(f"{where}: the target must be an absolute container path")
        if volume.target in targets:
            raise InvalidSpecError(f"{where}: two volumes mount at the same path")
        targets.add(volume.target)
        if volume.kind == service_spec_pb2.VOLUME_KIND_BIND:
            if not volume.source.startswith("/"):
                raise InvalidSpecError(
                    f"{where}: bind source {volume.source!r} is not an absolute host path"
                )
            mounts.append(
                docker.types.Mount(
                    volume.target, volume.source, type="bind", read_only=volume.read_only
                )
            )
        elif volume.kind == service_spec_pb2.VOLUME_KIND_NAMED:
            if not volume.source:
                raise InvalidSpecError(f"{where}: a named volume needs its name as source")
            volumes.setdefault(volume.source, VolumeWant(volume.source, spec.realm))
            mounts.append(
                docker.types.Mount(
                    volume.target, volume.source, type="volume", read_only=volume.read_only
                )
            )
        elif volume.kind == service_spec_pb2.VOLUME_KIND_TMPFS:
            mounts.append(
                docker.types.Mount(
                    volume.target,
                    None,
                    type="tmpfs",
                    read_only=volume.read_only,
                    tmpfs_size=volume.tmpfs_size_bytes or None,
                )
            )
        else:
            raise InvalidSpecError(f"{where}: the volume kind is not set (bind, named or tmpfs)")
    return mounts, tuple(volumes.values())


def _port_bindings(spec: service_spec_pb2.ServiceSpec) -> dict[str, list[tuple[str, int]]]:
    bindings: dict[str, list[tuple[str, int]]] = {}
    seen: set[tuple[str, int]] = set()
    for portal in spec.portals:
        where = f"service {spec.realm}/{spec.name}, portal {portal.name!r}"
        container_port = portal.container_port or spec.connector_port
        host = (portal.host_ip or DEFAULT_PORTAL_HOST_IP, portal.host_port)
        if not 0 < portal.host_port <= _MAX_PORT:
            raise InvalidSpecError(f"{where}: host port {portal.host_port} is out of range")
        if not 0 < container_port <= _MAX_PORT:
            raise InvalidSpecError(
                f"{where}: no container port (the portal names none and the service has no "
                "connector port)"
            )
        if host in seen:
            raise InvalidSpecError(f"{where}: {host[0]}:{host[1]} is bound twice")
        seen.add(host)
        bindings.setdefault(f"{container_port}/tcp", []).append(host)
    return bindings


def _resources(resources: service_spec_pb2.ResourceRequirements) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if resources.memory_bytes:
        kwargs["mem_limit"] = resources.memory_bytes
        kwargs["memswap_limit"] = resources.memory_bytes
    if resources.cpus > 0:
        kwargs["nano_cpus"] = round(resources.cpus * 1e9)
    if resources.shm_size_bytes:
        kwargs["shm_size"] = resources.shm_size_bytes
    return kwargs


def _check_gpus(spec: service_spec_pb2.ServiceSpec, gpus: GpuAssignment | None) -> None:
    wanted = spec.resources.gpus.count if spec.resources.HasField("gpus") else 0
    where = f"service {spec.realm}/{spec.name}"
    if gpus is None:
        if wanted:
            raise InvalidSpecError(f"{where} needs {wanted} GPU(s) but none were assigned")
        return
    if len(gpus.uuids) != wanted:
        raise InvalidSpecError(
            f"{where} needs {wanted} GPU(s) but {len(gpus.uuids)} were assigned "
            f"({', '.join(gpus.uuids)})"
        )
    vendor = spec.resources.gpus.vendor
    if vendor not in (gpu_pb2.GPU_VENDOR_UNSPECIFIED, gpus.vendor):
        raise InvalidSpecError(
            f"{where} needs {gpu_pb2.GpuVendor.Name(vendor)} GPUs but was assigned "
            f"{gpu_pb2.GpuVendor.Name(gpus.vendor)} ones"
        )


def _gpu_kwargs(gpus: GpuAssignment | None, group_ids: tuple[int, ...]) -> dict[str, Any]:
    if gpus is None:
        return {}
    if gpus.vendor == gpu_pb2.GPU_VENDOR_NVIDIA:
        return {
            "device_requests": [
                docker.types.DeviceRequest(
                    driver="nvidia", device_ids=list(gpus.uuids), capabilities=[["gpu"]]
                )
            ]
        }
    kwargs: dict[str, Any] = {"devices": [f"{path}:{path}:rwm" for path in gpus.amd_device_paths]}
    if group_ids:
        kwargs["group_add"] = [str(gid) for gid in group_ids]
    return kwargs
