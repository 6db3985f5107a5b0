"""Real-engine fixtures: the tiny image, and runtimes whose every resource is removed after.

Each runtime gets a fresh agent id (and tests a fresh realm), so tests never see each
other's containers, and cleanup removes exactly what carries that agent's label, even when
the test failed halfway.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from ozwald_agent.runtime import DockerRuntime, RuntimeSettings
from ozwald_agent.runtime import labels as lbl

TINY_IMAGE = "ozwald/tiny:local"
REPO = Path(__file__).resolve().parents[3]

RuntimeFactory = Callable[..., DockerRuntime]


@pytest.fixture(scope="session")
def engine() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as e:
        pytest.fail(f"no Docker Engine answers ({e}); run `make docker`")
    yield client
    client.close()


@pytest.fixture(scope="session")
def tiny_image(engine: docker.DockerClient) -> str:
    """ozwald/tiny:local, built by scripts/build-tiny-image.sh (a no-op when up to date)."""
    subprocess.run(
        ["bash", str(REPO / "scripts" / "build-tiny-image.sh"), TINY_IMAGE],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return TINY_IMAGE


@pytest.fixture
def realm() -> str:
    return f"it{uuid.uuid4().hex[:8]}"


@pytest.fixture
def make_runtime(engine: docker.DockerClient, tiny_image: str) -> Iterator[RuntimeFactory]:
    agent_ids: list[str] = []
    runtimes: list[DockerRuntime] = []

    def make(agent_id: str | None = None, **settings: object) -> DockerRuntime:
        agent_id = agent_id or f"test-{uuid.uuid4().hex[:10]}"
        agent_ids.append(agent_id)
        runtime = DockerRuntime(RuntimeSettings(agent_id=agent_id, **settings))  # type: ignore[arg-type]
        runtimes.append(runtime)
        return runtime

    yield make
    for runtime in runtimes:
        runtime.close()
    remove_everything_of(engine, agent_ids)


@pytest.fixture
def runtime(make_runtime: RuntimeFactory) -> DockerRuntime:
    return make_runtime()


def remove_everything_of(engine: docker.DockerClient, agent_ids: list[str]) -> None:
    """Containers first (they hold networks), then networks and volumes."""
    selectors: list[dict[str, str | list[str] | bool]] = [
        {"label": f"{lbl.AGENT}={agent_id}"} for agent_id in agent_ids
    ]
    for selector in selectors:
        for container in engine.containers.list(ignore_removed=True, all=True, filters=selector):
            container.remove(force=True, v=True)
    for selector in selectors:
        for network in engine.networks.list(filters=selector):
            network.remove()
        for volume in engine.volumes.list(filters=selector):
            volume.remove(force=True)


def wait_until(what: str, check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout_s} s")
        time.sleep(0.02)
