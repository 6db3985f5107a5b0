"""`DelegatingRuntime`: a `ContainerRuntime` that hands every call to an inner one.

The layers that add something around containers (secret files, encrypted volumes)
subclass it and override only the calls they change, so the reconciler sees one
`ContainerRuntime` and none of those layers repeats the rest of the protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Generic, TypeVar

from ozwald.common.v1 import service_spec_pb2

from ozwald_agent.runtime.container_info import ContainerInfo, StopResult
from ozwald_agent.runtime.events import RuntimeEvent
from ozwald_agent.runtime.exec import ExecResult
from ozwald_agent.runtime.gpus import GpuAssignment
from ozwald_agent.runtime.protocol import ContainerRuntime
from ozwald_agent.runtime.streams import StoppableIterator

InnerT = TypeVar("InnerT", bound=ContainerRuntime)


class DelegatingRuntime(Generic[InnerT]):
    def __init__(self, inner: InnerT) -> None:
        self._inner = inner

    @property
    def agent_id(self) -> str:
        return self._inner.agent_id

    def create(
        self,
        spec: service_spec_pb2.ServiceSpec,
        *,
        fingerprint: str,
        gpus: GpuAssignment | None = None,
    ) -> ContainerInfo:
        return self._inner.create(spec, fingerprint=fingerprint, gpus=gpus)

    def start(self, container: str) -> None:
        self._inner.start(container)

    def stop(self, container: str, *, timeout_s: float = 10.0) -> StopResult:
        return self._inner.stop(container, timeout_s=timeout_s)

    def remove(self, container: str, *, force: bool = False) -> bool:
        return self._inner.remove(container, force=force)

    def inspect(self, container: str) -> ContainerInfo:
        return self._inner.inspect(container)

    def inspect_service(self, realm: str, service: str) -> ContainerInfo | None:
        return self._inner.inspect_service(realm, service)

    def list_managed(
        self, *, realm: str | None = None, service: str | None = None
    ) -> list[ContainerInfo]:
        return self._inner.list_managed(realm=realm, service=service)

    def container_ip(self, container: str, *, network: str | None = None) -> str:
        return self._inner.container_ip(container, network=network)

    def logs(
        self, container: str, *, tail: int | None = 100, timestamps: bool = False
    ) -> list[str]:
        return self._inner.logs(container, tail=tail, timestamps=timestamps)

    def follow_logs(
        self, container: str, *, tail: int | None = 0, timestamps: bool = False
    ) -> StoppableIterator[str]:
        return self._inner.follow_logs(container, tail=tail, timestamps=timestamps)

    def watch_exits(self, *, since: datetime | None = None) -> StoppableIterator[RuntimeEvent]:
        return self._inner.watch_exits(since=since)

    def exec(self, container: str, argv: Sequence[str], *, timeout_s: float) -> ExecResult:
        return self._inner.exec(container, argv, timeout_s=timeout_s)

    def remove_unused_networks(self, *, realm: str | None = None) -> list[str]:
        return self._inner.remove_unused_networks(realm=realm)
