"""`ContainerRuntime` on the Docker Engine, through the docker SDK (never the CLI).

One instance per agent. It creates, starts, stops and removes the agent's containers,
lists and inspects them (only those labelled with its agent id), streams their logs and
exits, and runs commands in them. It holds no state of its own beyond the client: what
runs is always read back from the engine, so a restarted agent sees exactly what its
predecessor left (see `list_managed`).

The client is made on first use and made again after a failure to make it, so an agent
started while the engine is down works as soon as the engine answers.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container
from docker.utils import kwargs_from_env
from ozwald.common.v1 import gpu_pb2, service_spec_pb2

from ozwald_agent.runtime import labels as lbl
from ozwald_agent.runtime.container_info import ContainerInfo, StopResult
from ozwald_agent.runtime.container_spec import ContainerPlan, RuntimeSettings, build_container_plan
from ozwald_agent.runtime.docker_errors import engine_call
from ozwald_agent.runtime.engine_limits import engine_open_files_limit
from ozwald_agent.runtime.env_files import read_env_files
from ozwald_agent.runtime.errors import (
    ContainerExistsError,
    ContainerNotFoundError,
    ContainerNotRunningError,
    ImageNotPresentError,
)
from ozwald_agent.runtime.events import EventSource, RuntimeEvent, watch_exits
from ozwald_agent.runtime.exec import ExecResult, run_exec
from ozwald_agent.runtime.gpus import GpuAssignment, device_group_ids
from ozwald_agent.runtime.host_facts import DockerHostFacts
from ozwald_agent.runtime.naming import container_name, realm_network_name
from ozwald_agent.runtime.networks import connect, ensure_network, remove_unused_networks
from ozwald_agent.runtime.streams import StoppableIterator, split_lines
from ozwald_agent.runtime.volumes import ensure_volume

logger = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "unix:///var/run/docker.sock"
# Generous: creating a container with many mounts on a busy engine can take seconds.
DEFAULT_TIMEOUT_S = 60
DEFAULT_STOP_TIMEOUT_S = 10.0
DEFAULT_LOG_TAIL = 100
_SIGKILL_EXIT = 128 + 9
_HTTP_CONFLICT = 409


class DockerRuntime:
    """The agent's containers on one Docker Engine. Thread-safe; one per agent."""

    def __init__(
        self,
        settings: RuntimeSettings,
        *,
        base_url: str | None = None,
        timeout_s: int = DEFAULT_TIMEOUT_S,
        environ: Mapping[str, str] | None = None,
        env_passthrough: Mapping[str, str] | None = None,
        client_factory: Callable[[], docker.DockerClient] | None = None,
        stat: Callable[[str], os.stat_result] = os.stat,
    ) -> None:
        """`base_url` defaults to DOCKER_HOST (from `environ`, default os.environ), then the
        local socket. `env_passthrough` is what bare `KEY` lines of env files read (see
        `env_files.py`); None, the default, passes nothing of the agent's environment."""
        env = dict(os.environ if environ is None else environ)
        self._settings = settings
        self._client_args: dict[str, Any] = {
            **kwargs_from_env(environment=env),
            "timeout": timeout_s,
        }
        if base_url is not None:
            self._client_args["base_url"] = base_url
        self._client_args.setdefault("base_url", DEFAULT_ENDPOINT)
        self.endpoint = str(self._client_args["base_url"])
        self._factory = client_factory or self._new_client
        self._env_passthrough = env_passthrough
        self._stat = stat
        self._lock = threading.Lock()
        self._ensure_lock = threading.Lock()
        self._client: docker.DockerClient | None = None
        self._effective: RuntimeSettings | None = None
        self.host_facts = DockerHostFacts(self.client)

    @property
    def settings(self) -> RuntimeSettings:
        return self._settings

    @property
    def agent_id(self) -> str:
        return self._settings.agent_id

    @property
    def env_passthrough(self) -> Mapping[str, str] | None:
        """What bare `KEY` lines of env files read (see `env_files.py`)."""
        return self._env_passthrough

    def effective_settings(self) -> RuntimeSettings:
        """The settings containers are created with (nofile lowered to the engine's limit)."""
        return self._effective_settings()

    @property
    def engine_is_local(self) -> bool:
        """True when the engine runs on this host (its pids are this host's pids)."""
        return self.endpoint.startswith("unix://")

    def client(self) -> docker.DockerClient:
        """The docker SDK client, made (and its API version negotiated) on first use."""
        with self._lock:
            if self._client is None:
                with engine_call(f"connecting to the Docker Engine at {self.endpoint}"):
                    self._client = self._factory()
            return self._client

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    # -- lifecycle -------------------------------------------------------------------

    def create(
        self,
        spec: service_spec_pb2.ServiceSpec,
        *,
        fingerprint: str,
        gpus: GpuAssignment | None = None,
    ) -> ContainerInfo:
        """Creates (does not start) the service's container, with its networks and volumes.

        Raises ContainerExistsError when a container with the service's name exists
        (whoever made it): nothing is replaced here. A failure after the container was
        made (joining a declared network) removes it again, so no half-made container
        is left behind.
        """
        env_file_values = read_env_files(list(spec.env_files), self._env_passthrough)
        group_ids: tuple[int, ...] = ()
        if gpus is not None and gpus.vendor == gpu_pb2.GPU_VENDOR_AMD:
            group_ids = device_group_ids(gpus.amd_device_paths, self._stat)
        plan = build_container_plan(
            spec,
            self._effective_settings(),
            fingerprint=fingerprint,
            env_file_values=env_file_values,
            gpus=gpus,
            gpu_group_ids=group_ids,
        )
        if not self.host_facts.image_present(spec.image):
            # Checked first so that a missing image leaves no network or volume behind.
            raise ImageNotPresentError(spec.image)
        client = self.client()
        # The engine's duplicate-name check for networks is not atomic: two creates at
        # once for services of one realm would make two networks of the same name.
        with self._ensure_lock:
            for network in plan.networks:
                ensure_network(client, network, self.agent_id)
            for volume in plan.volumes:
                ensure_volume(client, volume, self.agent_id)
        container = self._create_container(client, plan, spec.image)
        try:
            for network in plan.late_networks:
                connect(client, network.name, container, plan.aliases)
            with engine_call(f"inspecting container {plan.name}", container=plan.name):
                container.reload()
        except Exception:
            self.remove(container.id or plan.name, force=True)
            raise
        logger.info(
            "created container %s",
            plan.name,
            extra={"realm": spec.realm, "service": spec.name, "container_id": container.id},
        )
        return ContainerInfo.from_inspect(container.attrs)

    def start(self, container: str) -> None:
        with engine_call(f"starting container {container}", container=container):
            self.client().api.start(container)
        logger.info("started container %s", container, extra={"container": container})

    def stop(self, container: str, *, timeout_s: float = DEFAULT_STOP_TIMEOUT_S) -> StopResult:
        """SIGTERM (or the image's STOPSIGNAL), then SIGKILL after `timeout_s` seconds.

        Stopping a container that is not running is not an error.
        """
        began = time.monotonic()
        with engine_call(f"stopping container {container}", container=container):
            self.client().api.stop(container, timeout=max(math.ceil(timeout_s), 0))
        elapsed = time.monotonic() - began
        info = self.inspect(container)
        # The engine kills only once the timeout has passed; a container that had died of
        # SIGKILL before this stop was not killed by it.
        killed = info.exit_code == _SIGKILL_EXIT and not info.oom_killed and elapsed >= timeout_s
        logger.info(
            "stopped container %s (exit %s%s, %.1f s)",
            container,
            info.exit_code,
            ", killed after the timeout" if killed else "",
            elapsed,
            extra={"container": container},
        )
        return StopResult(info.exit_code, killed, elapsed)

    def remove(self, container: str, *, force: bool = False) -> bool:
        """Removes the container and its anonymous volumes (never named ones).

        False when it was already gone. Without `force`, a running container is refused
        (EngineError): stop it first so it can end gracefully.
        """
        try:
            with engine_call(f"removing container {container}", container=container):
                self.client().api.remove_container(container, v=True, force=force)
        except ContainerNotFoundError:
            return False
        logger.info("removed container %s", container, extra={"container": container})
        return True

    # -- reading ---------------------------------------------------------------------

    def inspect(self, container: str) -> ContainerInfo:
        with engine_call(f"inspecting container {container}", container=container):
            attrs = self.client().api.inspect_container(container)
        return ContainerInfo.from_inspect(attrs)

    def inspect_service(self, realm: str, service: str) -> ContainerInfo | None:
        """Whatever container holds the service's name (ours or not), or None."""
        try:
            return self.inspect(container_name(realm, service, self._settings.name_prefix))
        except ContainerNotFoundError:
            return None

    def list_managed(
        self, *, realm: str | None = None, service: str | None = None
    ) -> list[ContainerInfo]:
        """This agent's containers in every state, sorted by name: what to adopt."""
        filters: dict[str, str | list[str] | bool] = {
            "label": lbl.label_filters(self.agent_id, realm=realm, service=service)
        }
        with engine_call("listing Ozwald containers"):
            containers = self.client().containers.list(
                all=True, filters=filters, ignore_removed=True
            )
        infos = [ContainerInfo.from_inspect(c.attrs) for c in containers]
        return sorted(infos, key=lambda info: info.name)

    def container_ip(self, container: str, *, network: str | None = None) -> str:
        """The container's IPv4 address on `network` (default: its realm's network)."""
        info = self.inspect(container)
        if network is None:
            if info.service is None:
                raise ContainerNotRunningError(
                    f"container {info.name} has no Ozwald labels, so no realm network; "
                    "name the network"
                )
            network = realm_network_name(info.service.realm, self._settings.name_prefix)
        address = info.networks.get(network, "")
        if not info.running or not address:
            raise ContainerNotRunningError(
                f"container {info.name} has no address on network {network} "
                f"(state {info.state.value})"
            )
        return address

    def logs(
        self, container: str, *, tail: int | None = DEFAULT_LOG_TAIL, timestamps: bool = False
    ) -> list[str]:
        """The last `tail` lines of stdout and stderr together (None: all of them)."""
        with engine_call(f"reading the logs of container {container}", container=container):
            data = self.client().api.logs(
                container,
                stdout=True,
                stderr=True,
                tail="all" if tail is None else tail,
                timestamps=timestamps,
            )
        return list(split_lines(iter([data])))

    def follow_logs(
        self, container: str, *, tail: int | None = 0, timestamps: bool = False
    ) -> StoppableIterator[str]:
        """Log lines as they come (after the last `tail` ones), until the container stops
        or `close()` is called from any thread."""
        with engine_call(f"following the logs of container {container}", container=container):
            stream = self.client().api.logs(
                container,
                stdout=True,
                stderr=True,
                stream=True,
                follow=True,
                tail="all" if tail is None else tail,
                timestamps=timestamps,
            )

        def produce(follower: StoppableIterator[str]) -> Iterator[str]:
            follower.attach(stream)
            return split_lines(iter(stream))

        return StoppableIterator(produce)

    def watch_exits(self, *, since: datetime | None = None) -> StoppableIterator[RuntimeEvent]:
        """This agent's container exits as they happen; see `events.py`."""
        filters = {
            "type": ["container"],
            "event": ["die", "oom"],
            "label": lbl.label_filters(self.agent_id),
        }

        def open_stream(since_s: int | None) -> EventSource:
            with engine_call("opening the engine's event stream"):
                stream: EventSource = self.client().api.events(
                    since=since_s, filters=filters, decode=True
                )
            return stream

        return watch_exits(open_stream, since=since)

    def exec(self, container: str, argv: Sequence[str], *, timeout_s: float) -> ExecResult:
        """Runs `argv` (no shell) in the running container, stopping at `timeout_s`."""
        with engine_call(f"running a command in container {container}", container=container):
            return run_exec(
                self.client().api,
                container,
                argv,
                timeout_s,
                kill_on_timeout=self.engine_is_local,
            )

    def remove_unused_networks(self, *, realm: str | None = None) -> list[str]:
        """Removes this agent's networks no container uses (volumes are never removed)."""
        return remove_unused_networks(self.client(), self.agent_id, realm)

    # -- internals -------------------------------------------------------------------

    def _effective_settings(self) -> RuntimeSettings:
        """The settings, with `nofile_limit` lowered to what the engine can grant."""
        with self._lock:
            if self._effective is not None:
                return self._effective
        settings = self._settings
        wanted = settings.nofile_limit
        if wanted is not None and self.engine_is_local:
            ceiling = engine_open_files_limit(self.endpoint.removeprefix("unix://"))
            if ceiling is None:
                # Unlimited, or the engine did not answer: ask again next time.
                return settings
            if ceiling < wanted:
                logger.info(
                    "the engine's open-files limit is %d: containers get nofile=%d, not %d",
                    ceiling,
                    ceiling,
                    wanted,
                )
                settings = replace(settings, nofile_limit=ceiling)
        with self._lock:
            self._effective = settings
        return settings

    def _new_client(self) -> docker.DockerClient:
        return docker.DockerClient(**self._client_args)

    def _create_container(
        self, client: docker.DockerClient, plan: ContainerPlan, image: str
    ) -> Container:
        with engine_call(f"creating container {plan.name}", image=image, container=plan.name):
            try:
                return client.containers.create(**plan.create_kwargs)
            except docker.errors.APIError as e:
                if e.status_code != _HTTP_CONFLICT:
                    raise
                cause = e
        existing = self.inspect_service(plan.service.realm, plan.service.service)
        raise ContainerExistsError(
            _exists_message(plan, existing, self.agent_id),
            existing=existing,
            remedy=_exists_remedy(plan, existing, self.agent_id),
        ) from cause


def _exists_message(plan: ContainerPlan, existing: ContainerInfo | None, agent_id: str) -> str:
    head = f"container {plan.name} already exists"
    if existing is None:
        return f"{head} (it vanished while being inspected)"
    state = f"state {existing.state.value}"
    owner = existing.service
    if owner is None:
        return f"{head} ({state}) and was not created by Ozwald"
    if (owner.realm, owner.service) != (plan.service.realm, plan.service.service):
        return (
            f"{head} ({state}) for realm {owner.realm!r} service {owner.service!r}: the "
            f"names {plan.service.realm!r}/{plan.service.service!r} and "
            f"{owner.realm!r}/{owner.service!r} make the same container name"
        )
    if owner.agent_id != agent_id:
        return f"{head} ({state}) and belongs to another agent ({owner.agent_id})"
    return f"{head} ({state}, fingerprint {owner.fingerprint[:12]}): this agent made it"


def _exists_remedy(plan: ContainerPlan, existing: ContainerInfo | None, agent_id: str) -> str:
    if existing is not None and existing.owned_by(agent_id):
        same_service = existing.service is not None and (
            existing.service.service == plan.service.service
        )
        if same_service:
            return "adopt it (same fingerprint), or stop and remove it before creating again"
    return f"remove or rename it (`docker rm -f {plan.name}`) if it is not needed"
