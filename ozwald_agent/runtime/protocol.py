"""`ContainerRuntime`: what the reconciler needs from a container engine.

`DockerRuntime` implements it on the Docker Engine; tests of the reconciler can implement
it in memory. Containers are named by id or name (`str`) everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from ozwald.common.v1 import service_spec_pb2

from ozwald_agent.runtime.container_info import ContainerInfo, StopResult
from ozwald_agent.runtime.events import RuntimeEvent
from ozwald_agent.runtime.exec import ExecResult
from ozwald_agent.runtime.gpus import GpuAssignment
from ozwald_agent.runtime.streams import StoppableIterator


class ContainerRuntime(Protocol):
    """The agent's containers on one engine; every method may raise ContainerRuntimeError."""

    @property
    def agent_id(self) -> str: ...

    def create(
        self,
        spec: service_spec_pb2.ServiceSpec,
        *,
        fingerprint: str,
        gpus: GpuAssignment | None = None,
    ) -> ContainerInfo:
        """Creates, does not start; ContainerExistsError when the name is taken."""
        ...

    def start(self, container: str) -> None: ...

    def stop(self, container: str, *, timeout_s: float = ...) -> StopResult:
        """Graceful signal, then kill after `timeout_s`; not an error when not running.

        ContainerNotFoundError when there is no such container."""
        ...

    def remove(self, container: str, *, force: bool = False) -> bool:
        """False when already gone."""
        ...

    def inspect(self, container: str) -> ContainerInfo: ...

    def inspect_service(self, realm: str, service: str) -> ContainerInfo | None: ...

    def list_managed(
        self, *, realm: str | None = None, service: str | None = None
    ) -> list[ContainerInfo]:
        """This agent's containers, in every state."""
        ...

    def container_ip(self, container: str, *, network: str | None = None) -> str: ...

    def logs(
        self, container: str, *, tail: int | None = ..., timestamps: bool = False
    ) -> list[str]: ...

    def follow_logs(
        self, container: str, *, tail: int | None = 0, timestamps: bool = False
    ) -> StoppableIterator[str]: ...

    def watch_exits(self, *, since: datetime | None = None) -> StoppableIterator[RuntimeEvent]: ...

    def exec(self, container: str, argv: Sequence[str], *, timeout_s: float) -> ExecResult: ...

    def remove_unused_networks(self, *, realm: str | None = None) -> list[str]: ...
