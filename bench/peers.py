"""The peers' containers, made with the same settings the agent gives its own.

The agent's settings (ozwald_agent/runtime/container_spec.py) are written out here again
rather than imported, so a peer never runs Ozwald code; `settings()` reads what the engine
recorded for any container, and the benchmarks compare the peers' with the agent's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import docker.types
from harness import TINY_IMAGE

PORT = 8080
HEALTH_PATH = "/healthz"
ENTRYPOINT = ["sh", "-c"]
COMMAND = ["exec httpd -f -p 8080 -h /www"]
PIDS_LIMIT = 16384
BENCH_LABEL = "dev.ozwald.bench"
LOG_OPTIONS = {"max-size": "50m", "max-file": "5"}


@dataclass(frozen=True)
class Shape:
    """One service's container, as the agent would make it."""

    name: str  # the service name: hostname and network alias
    memory: int  # bytes
    cpus: float
    nofile: int  # the agent lowers 65536 to what the engine allows; copy its value


def ozwald_service_yaml(shape: Shape, interval_s: float, indent: int = 6) -> str:
    """The service in ozwald.yml, at `indent` spaces (a realm's `services:` map)."""
    pad = " " * indent
    lines = [
        f"{shape.name}:",
        f"  image: {TINY_IMAGE}",
        f"  connector_port: {PORT}",
        f"  entrypoint: {ENTRYPOINT}",
        f"  command: {COMMAND}",
        "  health_check:",
        f"    http: {{path: {HEALTH_PATH}}}",
        "    start_period: 0s",
        f"    interval: {round(interval_s * 1000)}ms",
        "    timeout: 1s",
        "    retries: 5",
        f"  resources: {{memory: {shape.memory}, cpus: {shape.cpus}}}",
    ]
    return "".join(f"{pad}{line}\n" for line in lines)


def raw_create_kwargs(
    shape: Shape, container: str, network: str, labels: dict[str, str]
) -> dict[str, Any]:
    """`docker.DockerClient.containers.create` arguments for `shape`."""
    return {
        "image": TINY_IMAGE,
        "name": container,
        "labels": labels,
        "environment": {"NVIDIA_VISIBLE_DEVICES": "void"},
        "entrypoint": ENTRYPOINT,
        "command": COMMAND,
        "hostname": shape.name,
        "network": network,
        "networking_config": {network: docker.types.EndpointConfig("1.41", aliases=[shape.name])},
        "restart_policy": {"Name": "no"},
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "init": True,
        "pids_limit": PIDS_LIMIT,
        "ulimits": [docker.types.Ulimit(name="nofile", soft=shape.nofile, hard=shape.nofile)],
        "log_config": docker.types.LogConfig(type="json-file", config=LOG_OPTIONS),
        "mem_limit": shape.memory,
        "memswap_limit": shape.memory,
        "nano_cpus": round(shape.cpus * 1e9),
    }


def compose_service(shape: Shape, container: str, labels: dict[str, str]) -> dict[str, Any]:
    """The service in a compose file (format 2.4) joined to the network called `peers`."""
    return {
        "image": TINY_IMAGE,
        "container_name": container,
        "hostname": shape.name,
        "entrypoint": ENTRYPOINT,
        "command": COMMAND,
        "environment": {"NVIDIA_VISIBLE_DEVICES": "void"},
        "labels": labels,
        "init": True,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "pids_limit": PIDS_LIMIT,
        "ulimits": {"nofile": {"soft": shape.nofile, "hard": shape.nofile}},
        "logging": {"driver": "json-file", "options": LOG_OPTIONS},
        "mem_limit": shape.memory,
        "memswap_limit": shape.memory,
        "cpus": shape.cpus,
        "restart": "no",
        "networks": {"peers": {"aliases": [shape.name]}},
    }


def compose_document(
    services: dict[str, dict[str, Any]], network: str, *, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    """A compose file whose services share the network `network`: an existing one, or
    with `labels` one that compose itself makes at `up` and removes at `down`."""
    peers: dict[str, Any] = {"name": network}
    if labels is None:
        peers["external"] = True
    else:
        peers["labels"] = labels
    return {"version": "2.4", "services": services, "networks": {"peers": peers}}


def agent_nofile(attrs: dict[str, Any]) -> int:
    """The open-files limit the agent gave a container (from its inspect data)."""
    return next(int(u["Hard"]) for u in attrs["HostConfig"]["Ulimits"] if u["Name"] == "nofile")


def settings(attrs: dict[str, Any]) -> dict[str, object]:
    """The settings that cost or save time at start, as the engine recorded them."""
    host, config = attrs["HostConfig"], attrs["Config"]
    nvidia = [e for e in config.get("Env") or [] if e.startswith("NVIDIA_VISIBLE_DEVICES=")]
    return {
        "Image": config["Image"],
        "Entrypoint": config["Entrypoint"],
        "Cmd": config["Cmd"],
        "Hostname": config["Hostname"],
        "NVIDIA_VISIBLE_DEVICES": nvidia,
        "Memory": host["Memory"],
        "MemorySwap": host["MemorySwap"],
        "NanoCpus": host["NanoCpus"],
        "CapDrop": host["CapDrop"],
        "SecurityOpt": host["SecurityOpt"],
        "Init": host["Init"],
        "PidsLimit": host["PidsLimit"],
        "Ulimits": host["Ulimits"],
        "LogConfig": host["LogConfig"],
        "RestartPolicy": host["RestartPolicy"]["Name"] or "no",
        "PortBindings": host["PortBindings"] or {},
        "Networks": len(attrs["NetworkSettings"]["Networks"]),
    }


def differences(reference: dict[str, object], other: dict[str, object]) -> list[str]:
    """Where `other` differs from `reference` (the agent's container)."""
    return [
        f"{key}: {other.get(key)!r} (ozwald: {value!r})"
        for key, value in reference.items()
        if other.get(key) != value
    ]


def note_differences(
    reference: dict[str, object],
    attrs: dict[str, Any],
    label: str,
    notes: list[str],
    ignore: tuple[str, ...] = (),
) -> None:
    """Adds a note when a peer's container (`attrs`) differs from the agent's."""
    seen = settings(attrs)
    differing = [d for d in differences(reference, seen) if not d.startswith(ignore)]
    if differing:
        notes.append(f"{label} differs: {'; '.join(differing)}")
