"""Containers that profiling runs: isolated copies of services, on the Docker Engine.

A profiled copy must never disturb what runs, nor be mistaken for it:

- Its name is `<prefix>-profile-<run id>`, never a service's `<prefix>-<realm>-<service>`.
- Its labels have no `ozwald.managed`: every query the reconciler makes (and the exit
  events it watches) filters on `ozwald.managed=true`, so it neither adopts nor removes
  a copy, and a copy's exit is not a service's. Instead the copy carries
  `ozwald.profiling=<run id>` with the agent, realm, service, variety, profile and
  fingerprint labels, so people and the agent can tell what it is.
- It joins a bridge network of its own (`<prefix>-profile-<run id>`, labelled the same
  way), not the realm's: no other service can reach it under the service's DNS name, and
  it reaches nobody by theirs. The agent reaches it at its address on that network, as
  health probes reach services. It publishes no host port.
- Named volumes are the service's own (a model cache is what the service would use).

`discard(run)` stops and removes a run's container and network; `discard_leftovers()`
removes every copy and network of this agent that a killed agent left behind.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import docker
import docker.errors
import docker.types
from ozwald.common.v1 import gpu_pb2, service_spec_pb2

from ozwald_agent.runtime import labels as lbl
from ozwald_agent.runtime.container_info import ContainerInfo
from ozwald_agent.runtime.container_spec import build_container_plan
from ozwald_agent.runtime.docker_errors import engine_call
from ozwald_agent.runtime.docker_runtime import DockerRuntime
from ozwald_agent.runtime.env_files import read_env_files
from ozwald_agent.runtime.errors import (
    ContainerNotFoundError,
    ContainerRuntimeError,
    ImageNotPresentError,
)
from ozwald_agent.runtime.exec import ExecResult
from ozwald_agent.runtime.gpus import GpuAssignment, device_group_ids
from ozwald_agent.runtime.volumes import ensure_volume

logger = logging.getLogger(__name__)

PROFILING = "ozwald.profiling"
STOP_TIMEOUT_S = 10.0
_ENDPOINT_API_VERSION = "1.41"


class CopySecrets(Protocol):
    """Delivers a copy's lockers as the service's own (SecretDeliveringRuntime fits)."""

    def deliver_to(
        self, spec: service_spec_pb2.ServiceSpec, container: str
    ) -> service_spec_pb2.ServiceSpec: ...

    def withdraw(self, container: str) -> None: ...


def copy_name(run_id: str, prefix: str) -> str:
    return f"{prefix}-profile-{run_id}"


class ProfilingCopies:
    """Profiled copies on the engine `runtime` talks to. Thread-safe."""

    def __init__(self, runtime: DockerRuntime, secrets: CopySecrets | None = None) -> None:
        self._runtime = runtime
        self._secrets = secrets

    @property
    def agent_id(self) -> str:
        return self._runtime.agent_id

    def network_of(self, run_id: str) -> str:
        return copy_name(run_id, self._runtime.settings.name_prefix)

    def create(
        self,
        spec: service_spec_pb2.ServiceSpec,
        *,
        run_id: str,
        fingerprint: str,
        gpus: GpuAssignment | None,
    ) -> ContainerInfo:
        """Creates (does not start) the copy of `spec` for run `run_id`, with its network."""
        runtime = self._runtime
        settings = runtime.effective_settings()
        group_ids: tuple[int, ...] = ()
        if gpus is not None and gpus.vendor == gpu_pb2.GPU_VENDOR_AMD:
            group_ids = device_group_ids(gpus.amd_device_paths, os.stat)
        name = copy_name(run_id, settings.name_prefix)
        if spec.secret_lockers:
            if self._secrets is None:
                raise ContainerRuntimeError(
                    f"{spec.realm}:{spec.name} needs secrets and this agent delivers none "
                    "to profiling copies"
                )
            # The same files (and endpoint token) the service gets, for the copy's name.
            spec = self._secrets.deliver_to(spec, name)
        try:
            return self._create(
                spec,
                name,
                run_id,
                settings=settings,
                fingerprint=fingerprint,
                gpus=gpus,
                group_ids=group_ids,
            )
        except BaseException:
            if self._secrets is not None and spec.secret_lockers:
                self._secrets.withdraw(name)
            raise

    def _create(
        self,
        spec: service_spec_pb2.ServiceSpec,
        name: str,
        run_id: str,
        *,
        settings: Any,
        fingerprint: str,
        gpus: GpuAssignment | None,
        group_ids: tuple[int, ...],
    ) -> ContainerInfo:
        runtime = self._runtime
        plan = build_container_plan(
            spec,
            settings,
            fingerprint=fingerprint,
            env_file_values=read_env_files(list(spec.env_files), runtime.env_passthrough),
            gpus=gpus,
            gpu_group_ids=group_ids,
        )
        if not runtime.host_facts.image_present(spec.image):
            raise ImageNotPresentError(spec.image)
        labels = self._labels(spec, plan.create_kwargs["labels"], run_id)
        kwargs: dict[str, Any] = {
            **plan.create_kwargs,
            "name": name,
            "labels": labels,
            "network": name,
            "networking_config": {
                name: docker.types.EndpointConfig(_ENDPOINT_API_VERSION, aliases=[spec.name])
            },
        }
        kwargs.pop("ports", None)
        client = runtime.client()
        with engine_call(f"creating network {name}"):
            client.networks.create(
                name,
                driver="bridge",
                labels={
                    PROFILING: run_id,
                    lbl.AGENT: self.agent_id,
                    lbl.REALM: spec.realm,
                    lbl.SERVICE: spec.name,
                },
                check_duplicate=True,
            )
        for volume in plan.volumes:
            ensure_volume(client, volume, self.agent_id)
        with engine_call(f"creating container {name}", image=spec.image, container=name):
            container = client.containers.create(**kwargs)
        logger.info(
            "created profiling copy %s",
            name,
            extra={"realm": spec.realm, "service": spec.name, "container_id": container.id},
        )
        return ContainerInfo.from_inspect(container.attrs)

    def start(self, container: str) -> None:
        self._runtime.start(container)

    def inspect(self, container: str) -> ContainerInfo:
        return self._runtime.inspect(container)

    def container_ip(self, container: str, *, network: str | None = None) -> str:
        return self._runtime.container_ip(container, network=network)

    def exec(self, container: str, argv: Sequence[str], *, timeout_s: float) -> ExecResult:
        return self._runtime.exec(container, argv, timeout_s=timeout_s)

    def logs(self, container: str, *, tail: int) -> list[str]:
        return self._runtime.logs(container, tail=tail)

    def stats(self, container: str) -> Mapping[str, Any]:
        """One stats reading (the engine's `one-shot`: no wait for a second sample)."""
        with engine_call(f"reading the stats of container {container}", container=container):
            answer: Mapping[str, Any] = self._runtime.client().api.stats(
                container, stream=False, one_shot=True
            )
        return answer

    def host_pids(self, container: str) -> set[int]:
        """Host pids of the container's processes (the engine's `top`)."""
        with engine_call(f"listing the processes of container {container}", container=container):
            top = self._runtime.client().api.top(container)
        titles = [str(t).upper() for t in top.get("Titles") or ()]
        if "PID" not in titles:
            return set()
        column = titles.index("PID")
        pids: set[int] = set()
        for row in top.get("Processes") or ():
            try:
                pids.add(int(row[column]))
            except (IndexError, ValueError):
                continue
        return pids

    def discard(self, run_id: str) -> None:
        """Stops (gracefully, then kills) and removes the run's copy, then its network.

        Nothing is raised for what is already gone."""
        self._discard(
            self._find("containers", {PROFILING: run_id}),
            self._find("networks", {PROFILING: run_id}),
            graceful=True,
        )

    def discard_leftovers(self) -> list[str]:
        """Removes every profiling copy (killed at once: nothing in it is worth a graceful
        stop) and network of this agent; returns the copies' names."""
        containers = self._find("containers", {})
        networks = self._find("networks", {})
        self._discard(containers, networks, graceful=False)
        return [str(c.name) for c in containers]

    def _find(self, kind: str, labels: Mapping[str, str]) -> list[Any]:
        wanted = {PROFILING: None, lbl.AGENT: self.agent_id, **labels}
        filters = [key if value is None else f"{key}={value}" for key, value in wanted.items()]
        client = self._runtime.client()
        with engine_call(f"listing profiling {kind}"):
            if kind == "containers":
                return list(
                    client.containers.list(
                        all=True, filters={"label": filters}, ignore_removed=True
                    )
                )
            return list(client.networks.list(filters={"label": filters}))

    def _discard(
        self, containers: Sequence[Any], networks: Sequence[Any], *, graceful: bool
    ) -> None:
        for container in containers:
            name = str(container.name)
            try:
                if graceful and container.status == "running":
                    self._runtime.stop(name, timeout_s=STOP_TIMEOUT_S)
                self._runtime.remove(name, force=True)
            except ContainerNotFoundError:
                pass
            if self._secrets is not None:
                self._secrets.withdraw(name)
            logger.info("removed profiling copy %s", name, extra={"container": name})
        for network in networks:
            try:
                with engine_call(f"removing network {network.name}"):
                    network.remove()
            except Exception as e:
                if not isinstance(getattr(e, "__cause__", None), docker.errors.NotFound):
                    logger.warning("could not remove network %s: %s", network.name, e)

    def _labels(
        self, spec: service_spec_pb2.ServiceSpec, service_labels: Mapping[str, str], run_id: str
    ) -> dict[str, str]:
        labels = {k: v for k, v in service_labels.items() if k != lbl.MANAGED}
        labels[PROFILING] = run_id
        return labels
