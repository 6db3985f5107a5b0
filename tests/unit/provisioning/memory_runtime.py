"""An in-memory ContainerRuntime for reconciler unit tests: containers are records."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ozwald.common.v1 import service_spec_pb2

from ozwald_agent.runtime.container_info import ContainerInfo, ContainerState, StopResult
from ozwald_agent.runtime.errors import ContainerNotFoundError, EngineUnavailableError
from ozwald_agent.runtime.events import RuntimeEvent
from ozwald_agent.runtime.exec import ExecResult
from ozwald_agent.runtime.gpus import GpuAssignment
from ozwald_agent.runtime.labels import ServiceLabels
from ozwald_agent.runtime.streams import StoppableIterator


class MemoryRuntime:
    """Containers start running and stay so; `engine_down` makes every call fail."""

    def __init__(self, agent_id: str = "agent-1") -> None:
        self._agent_id = agent_id
        self.containers: dict[str, ContainerInfo] = {}
        self.engine_down = False
        self.created = 0

    @property
    def agent_id(self) -> str:
        return self._agent_id

    def _engine(self) -> None:
        if self.engine_down:
            raise EngineUnavailableError("the Docker Engine does not answer")

    def create(
        self,
        spec: service_spec_pb2.ServiceSpec,
        *,
        fingerprint: str,
        gpus: GpuAssignment | None = None,
    ) -> ContainerInfo:
        self._engine()
        self.created += 1
        name = f"ozwald-{spec.realm}-{spec.name}"
        labels = ServiceLabels(self._agent_id, spec.realm, spec.name, fingerprint)
        info = ContainerInfo(
            id=f"id-{self.created}",
            name=name,
            image=spec.image,
            image_id="",
            state=ContainerState.CREATED,
            exit_code=None,
            oom_killed=False,
            error="",
            pid=0,
            created_at=None,
            started_at=None,
            finished_at=None,
            restart_count=0,
            health=None,
            labels=labels.to_labels(),
            service=labels,
            networks={},
            published_ports=(),
        )
        self.containers[info.id] = info
        return info

    def start(self, container: str) -> None:
        self._engine()
        info = self.containers[container]
        self.containers[container] = _with(info, state=ContainerState.RUNNING)

    def stop(self, container: str, *, timeout_s: float = 10.0) -> StopResult:
        self._engine()
        info = self.containers[container]
        self.containers[container] = _with(info, state=ContainerState.EXITED, exit_code=0)
        return StopResult(exit_code=0, killed=False, elapsed_s=0.0)

    def remove(self, container: str, *, force: bool = False) -> bool:
        self._engine()
        return self.containers.pop(container, None) is not None

    def inspect(self, container: str) -> ContainerInfo:
        self._engine()
        if container not in self.containers:
            raise ContainerNotFoundError(f"no container {container}")
        return self.containers[container]

    def inspect_service(self, realm: str, service: str) -> ContainerInfo | None:
        found = [c for c in self.list_managed() if c.service and c.service.service == service]
        return found[0] if found else None

    def list_managed(
        self, *, realm: str | None = None, service: str | None = None
    ) -> list[ContainerInfo]:
        self._engine()
        return sorted(self.containers.values(), key=lambda c: c.name)

    def container_ip(self, container: str, *, network: str | None = None) -> str:
        return "192.0.2.1"

    def logs(
        self, container: str, *, tail: int | None = 100, timestamps: bool = False
    ) -> list[str]:
        return []

    def follow_logs(
        self, container: str, *, tail: int | None = 0, timestamps: bool = False
    ) -> StoppableIterator[str]:
        raise NotImplementedError

    def watch_exits(self, *, since: datetime | None = None) -> StoppableIterator[RuntimeEvent]:
        raise NotImplementedError

    def exec(self, container: str, argv: Sequence[str], *, timeout_s: float) -> ExecResult:
        raise NotImplementedError

    def remove_unused_networks(self, *, realm: str | None = None) -> list[str]:
        return []


def _with(info: ContainerInfo, **changes: object) -> ContainerInfo:
    from dataclasses import replace

    return replace(info, **changes)  # type: ignore[arg-type]
