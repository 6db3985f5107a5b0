"""Container engine detection against this machine's real Docker Engine."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from ozwald.common.v1 import container_runtime_pb2 as runtime_pb2

from ozwald_agent.hardware.container_runtime import DEFAULT_ENDPOINT, detect_container_runtime
from ozwald_agent.hardware.profile import collect_host_profile
from tests.support.short_paths import short_tmpdir

pytestmark = pytest.mark.integration


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    with short_tmpdir() as path:
        yield path


def test_the_real_engine_is_described_as_the_sdk_sees_it() -> None:
    client = docker.from_env()
    try:
        version, engine = client.version(), client.info()
    finally:
        client.close()

    info = detect_container_runtime()

    assert info.reachable, info.detail
    assert info.endpoint == (os.environ.get("DOCKER_HOST") or DEFAULT_ENDPOINT)
    assert info.engine_version == version["Version"]
    assert info.api_version == version["ApiVersion"]
    assert info.storage_driver == engine["Driver"]
    assert info.cgroup_driver == engine["CgroupDriver"]
    assert list(info.runtimes) == sorted(engine["Runtimes"])
    assert info.nvidia_runtime_available == ("nvidia" in engine["Runtimes"])


def test_the_host_profile_reaches_the_real_engine(tmp_path: Path) -> None:
    profile = collect_host_profile(tmp_path / "state")

    assert profile.container_runtime.reachable, profile.container_runtime.detail
    assert len(profile.gpu_vendors) == 2


def test_docker_host_at_a_missing_socket_is_socket_missing(socket_dir: Path) -> None:
    info = detect_container_runtime({"DOCKER_HOST": f"unix://{socket_dir}/absent.sock"})

    assert not info.reachable
    assert (
        info.unreachable_reason == runtime_pb2.CONTAINER_RUNTIME_UNREACHABLE_REASON_SOCKET_MISSING
    )


def test_docker_host_at_a_socket_nobody_listens_on_is_connection_refused(socket_dir: Path) -> None:
    with socket.socket(socket.AF_UNIX) as orphan:
        orphan.bind(str(socket_dir / "orphan.sock"))

    info = detect_container_runtime({"DOCKER_HOST": f"unix://{socket_dir}/orphan.sock"})

    assert not info.reachable
    assert (
        info.unreachable_reason
        == runtime_pb2.CONTAINER_RUNTIME_UNREACHABLE_REASON_CONNECTION_REFUSED
    )
