"""Helpers for provisioning tests against a real agent and the real Docker Engine."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
from ozwald.agent.v1 import service_status_pb2
from ozwald.common.v1 import service_spec_pb2

from ozwald_sdk.agent_client import AgentClient
from ozwald_sdk.config import load_config, resolve

ROOT = Path(__file__).resolve().parents[2]
TINY_IMAGE = "ozwald/tiny:local"
S = service_status_pb2
Status = service_status_pb2.InstanceStatus


def ensure_tiny_image() -> None:
    try:
        docker.from_env().images.get(TINY_IMAGE)
    except docker.errors.ImageNotFound:
        subprocess.run(["bash", str(ROOT / "scripts" / "build-tiny-image.sh")], check=True)


def new_realm() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@contextmanager
def realm_cleanup(realm: str) -> Iterator[None]:
    """Remove every container, network and volume of `realm`, even when a test fails."""
    try:
        yield
    finally:
        engine = docker.from_env()
        for container in engine.containers.list(
            ignore_removed=True, all=True, filters={"label": f"ozwald.realm={realm}"}
        ):
            container.remove(force=True)
        for network in engine.networks.list(filters={"label": f"ozwald.realm={realm}"}):
            network.remove()
        for volume in engine.volumes.list(filters={"label": f"ozwald.realm={realm}"}):
            volume.remove(force=True)


def write_config(directory: Path, realm: str, body: str) -> Path:
    """An ozwald.yml with one realm; `body` is the realm's YAML, indented by 4 spaces."""
    path = directory / f"{realm}.yml"
    path.write_text(f"version: 1\nrealms:\n  {realm}:\n{body}")
    return path


def specs(client: AgentClient, config: Path, *selectors: str) -> list[service_spec_pb2.ServiceSpec]:
    loaded = load_config(config)
    host = client.get_host_profile()
    return [resolve(loaded, selector, host).to_service_spec() for selector in selectors]


def statuses(client: AgentClient, realm: str) -> dict[str, Status]:
    return {s.name: s for s in client.list_services(realm=realm).instances}


def wait_for(
    client: AgentClient,
    realm: str,
    done: Callable[[dict[str, Status]], bool],
    *,
    timeout: float = 60.0,
) -> dict[str, Status]:
    deadline = time.monotonic() + timeout
    seen = statuses(client, realm)
    while not done(seen):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; services are now: {_show(seen)}")
        time.sleep(0.2)
        seen = statuses(client, realm)
    return seen


def all_in(state: int, *names: str) -> Callable[[dict[str, Status]], bool]:
    def done(seen: dict[str, Status]) -> bool:
        failed = [s for s in seen.values() if s.state == S.INSTANCE_STATE_FAILED]
        if failed and state != S.INSTANCE_STATE_FAILED:
            raise AssertionError(f"a service failed: {_show(seen)}")
        return all(name in seen and seen[name].state == state for name in names)

    return done


def container_id(realm: str, name: str) -> str:
    (container,) = docker.from_env().containers.list(
        ignore_removed=True,
        all=True,
        filters={"label": [f"ozwald.realm={realm}", f"ozwald.service={name}"]},
    )
    return str(container.id)


def _show(seen: dict[str, Status]) -> str:
    return "; ".join(
        f"{name}={S.InstanceState.Name(s.state)} ({s.reason}) {list(s.last_log_lines)[-3:]}"
        for name, s in sorted(seen.items())
    )
