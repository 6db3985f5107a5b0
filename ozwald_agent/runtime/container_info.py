"""One container as the engine reports it, read from `docker inspect` output. Pure."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ozwald_agent.runtime.labels import ServiceLabels

# Go's zero time: what the engine reports for "never".
_ZERO_TIME_PREFIX = "0001-01-01"


class ContainerState(enum.StrEnum):
    """Docker's own container states (`State.Status`)."""

    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    REMOVING = "removing"
    EXITED = "exited"
    DEAD = "dead"


@dataclass(frozen=True)
class PublishedPort:
    """A host address and port forwarding to a container port (a portal)."""

    host_ip: str
    host_port: int
    container_port: int
    protocol: str = "tcp"


@dataclass(frozen=True)
class StopResult:
    """How a stop ended: the exit code, whether the engine had to SIGKILL it, how long."""

    exit_code: int | None
    killed: bool
    elapsed_s: float


@dataclass(frozen=True)
class ContainerInfo:
    """What the engine says about one container.

    `service` is its parsed Ozwald labels (None when it is not an Ozwald container);
    `exit_code` is None unless the container has exited at least once and is not running
    now. `restart_count` counts the engine's own restarts, which are always 0 for Ozwald's
    containers (restart policy "no"); the agent's restarts live in its state store.
    `networks` maps each joined network's name to the container's IPv4 address on it
    (empty while the container is not running).
    """

    id: str
    name: str
    image: str
    image_id: str
    state: ContainerState
    exit_code: int | None
    oom_killed: bool
    error: str
    pid: int
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    restart_count: int
    health: str | None
    labels: Mapping[str, str] = field(repr=False)
    service: ServiceLabels | None
    networks: Mapping[str, str]
    published_ports: tuple[PublishedPort, ...]

    @property
    def running(self) -> bool:
        return self.state in (ContainerState.RUNNING, ContainerState.RESTARTING)

    def owned_by(self, agent_id: str) -> bool:
        return self.service is not None and self.service.agent_id == agent_id

    @classmethod
    def from_inspect(cls, attrs: Mapping[str, Any]) -> ContainerInfo:
        state: Mapping[str, Any] = attrs.get("State") or {}
        config: Mapping[str, Any] = attrs.get("Config") or {}
        labels = {str(k): str(v) for k, v in (config.get("Labels") or {}).items()}
        status = _state(state)
        finished_at = _time(state.get("FinishedAt"))
        exited = status in (ContainerState.EXITED, ContainerState.DEAD) and finished_at
        health = state.get("Health")
        return cls(
            id=str(attrs.get("Id", "")),
            name=str(attrs.get("Name", "")).lstrip("/"),
            image=str(config.get("Image", "")),
            image_id=str(attrs.get("Image", "")),
            state=status,
            exit_code=int(state.get("ExitCode", 0)) if exited else None,
            oom_killed=bool(state.get("OOMKilled", False)),
            error=str(state.get("Error") or ""),
            pid=int(state.get("Pid") or 0),
            created_at=_time(attrs.get("Created")),
            started_at=_time(state.get("StartedAt")),
            finished_at=finished_at,
            restart_count=int(attrs.get("RestartCount") or 0),
            health=str(health["Status"]) if isinstance(health, Mapping) else None,
            labels=labels,
            service=ServiceLabels.from_labels(labels),
            networks=_networks(attrs),
            published_ports=_published_ports(attrs),
        )


def _state(state: Mapping[str, Any]) -> ContainerState:
    try:
        return ContainerState(str(state.get("Status", "")))
    except ValueError:
        # Engines older than API 1.21 report only booleans; none of them is supported,
        # but an unknown word must not crash a listing.
        return ContainerState.RUNNING if state.get("Running") else ContainerState.EXITED


def parse_engine_time(value: object) -> datetime | None:
    """An RFC 3339 time from the engine (nanoseconds, "Z"), or None for Go's zero time."""
    if not isinstance(value, str) or not value or value.startswith(_ZERO_TIME_PREFIX):
        return None
    text = value.replace("Z", "+00:00")
    # Python keeps microseconds: cut the fraction to 6 digits before the offset.
    head, dot, rest = text.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[: min(digits, 6)].ljust(6, '0')}{rest[digits:]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_time = parse_engine_time


def _networks(attrs: Mapping[str, Any]) -> dict[str, str]:
    settings: Mapping[str, Any] = attrs.get("NetworkSettings") or {}
    networks: Mapping[str, Any] = settings.get("Networks") or {}
    return {
        str(name): str((endpoint or {}).get("IPAddress") or "")
        for name, endpoint in networks.items()
    }


def _published_ports(attrs: Mapping[str, Any]) -> tuple[PublishedPort, ...]:
    host_config: Mapping[str, Any] = attrs.get("HostConfig") or {}
    bindings: Mapping[str, Any] = host_config.get("PortBindings") or {}
    ports: list[PublishedPort] = []
    for key, hosts in bindings.items():
        port, _, protocol = str(key).partition("/")
        for host in hosts or []:
            host_port = str(host.get("HostPort") or "")
            if not host_port.isdigit() or not port.isdigit():
                continue
            ports.append(
                PublishedPort(
                    host_ip=str(host.get("HostIp") or ""),
                    host_port=int(host_port),
                    container_port=int(port),
                    protocol=protocol or "tcp",
                )
            )
    return tuple(ports)
