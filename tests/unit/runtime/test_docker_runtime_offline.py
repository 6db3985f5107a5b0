"""DockerRuntime when no engine answers: clear errors, and no engine call before checks."""

from __future__ import annotations

from pathlib import Path

import docker
import docker.errors
import pytest
from ozwald.common.v1 import service_spec_pb2 as spec_pb2

from ozwald_agent.runtime import (
    DockerRuntime,
    EngineUnavailableError,
    EnvFileError,
    RuntimeSettings,
)


def _offline(tmp_path: Path) -> DockerRuntime:
    return DockerRuntime(
        RuntimeSettings(agent_id="offline"), base_url=f"unix://{tmp_path}/absent.sock"
    )


def test_an_absent_engine_is_a_clear_error_with_a_remedy(tmp_path: Path) -> None:
    runtime = _offline(tmp_path)

    with pytest.raises(EngineUnavailableError) as caught:
        runtime.list_managed()

    assert f"the Docker Engine at unix://{tmp_path}/absent.sock" in caught.value.message
    assert "No such file or directory" in caught.value.message
    assert "start the Docker Engine" in caught.value.remedy
    assert "Traceback" not in str(caught.value)


def test_the_client_is_made_again_once_the_engine_answers(tmp_path: Path) -> None:
    attempts: list[docker.DockerClient] = []

    def factory() -> docker.DockerClient:
        if not attempts:
            attempts.append(docker.DockerClient(base_url="unix:///nowhere", version="1.41"))
            raise docker.errors.DockerException("Error while fetching server API version")
        # A fixed API version makes no request, so this stands for "the engine is back".
        attempts.append(docker.DockerClient(base_url="unix:///nowhere", version="1.41"))
        return attempts[-1]

    runtime = DockerRuntime(RuntimeSettings(agent_id="a"), client_factory=factory)

    with pytest.raises(EngineUnavailableError):
        runtime.client()
    assert runtime.client() is attempts[1]
    assert runtime.client() is attempts[1]
    assert len(attempts) == 2


def test_env_files_are_checked_before_the_engine_is_asked(tmp_path: Path) -> None:
    spec = spec_pb2.ServiceSpec(
        realm="main", name="web", image="x", env_files=[str(tmp_path / "missing.env")]
    )

    with pytest.raises(EnvFileError, match=r"missing\.env: no such file"):
        _offline(tmp_path).create(spec, fingerprint="fp")


def test_the_environment_chooses_the_engine(tmp_path: Path) -> None:
    runtime = DockerRuntime(
        RuntimeSettings(agent_id="a"), environ={"DOCKER_HOST": "tcp://10.0.0.5:2376"}
    )

    assert runtime.endpoint == "tcp://10.0.0.5:2376"
    assert not runtime.engine_is_local
    assert DockerRuntime(RuntimeSettings(agent_id="a"), environ={}).engine_is_local
