"""SDK and transport errors become the runtime's own, with the engine's words kept.

The explanations below are what Docker 20.10 answered on the build machine.
"""

from __future__ import annotations

import docker.errors
import pytest
import requests
import requests.exceptions
import urllib3.exceptions

from ozwald_agent.runtime.docker_errors import engine_call, translate
from ozwald_agent.runtime.errors import (
    ContainerNotFoundError,
    ContainerNotRunningError,
    ContainerRuntimeError,
    EngineError,
    EngineUnavailableError,
    GpuUnavailableError,
    ImageNotPresentError,
    MountSourceMissingError,
    PortInUseError,
)


def _api_error(
    status: int, explanation: str, cls: type[docker.errors.APIError] = docker.errors.APIError
) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    return cls(f"{status} Client Error", response=response, explanation=explanation)


@pytest.mark.parametrize(
    ("error", "expected", "words"),
    [
        (
            _api_error(404, "No such image: nope/nope:1", docker.errors.ImageNotFound),
            ImageNotPresentError,
            "image nope/nope:1 is not present",
        ),
        (
            _api_error(404, "No such container: ozwald-main-web", docker.errors.NotFound),
            ContainerNotFoundError,
            "no container ozwald-main-web",
        ),
        (
            _api_error(409, "Container 02ad7cbb54c9 is not running"),
            ContainerNotRunningError,
            "is not running",
        ),
        (
            _api_error(
                400,
                'invalid mount config for type "bind": bind source path does not exist: /srv/x',
            ),
            MountSourceMissingError,
            "/srv/x",
        ),
        (
            _api_error(
                500,
                "driver failed programming external connectivity on endpoint x3: Error starting "
                "userland proxy: listen tcp4 127.0.0.1:44183: bind: address already in use",
            ),
            PortInUseError,
            "127.0.0.1:44183",
        ),
        (
            _api_error(500, 'could not select device driver "nvidia" with capabilities: [[gpu]]'),
            GpuUnavailableError,
            "NVIDIA",
        ),
        (
            _api_error(
                500,
                'error gathering device information while adding custom device "/dev/kfd": '
                "no such file or directory",
            ),
            GpuUnavailableError,
            "/dev/kfd",
        ),
        (
            _api_error(400, "Minimum memory limit allowed is 6MB"),
            EngineError,
            "the Docker Engine refused: Minimum memory limit allowed is 6MB",
        ),
    ],
)
def test_engine_answers_are_translated(
    error: Exception, expected: type[ContainerRuntimeError], words: str
) -> None:
    translated = translate(
        error, "creating container x", image="nope/nope:1", container="ozwald-main-web"
    )

    assert type(translated) is expected
    assert words in str(translated)
    assert str(translated).startswith("creating container x")


def test_a_missing_socket_is_an_unavailable_engine_with_the_os_reason() -> None:
    protocol = urllib3.exceptions.ProtocolError(
        "Connection aborted.", FileNotFoundError(2, "No such file or directory")
    )
    error = requests.exceptions.ConnectionError(protocol)

    translated = translate(error, "listing Ozwald containers")

    assert isinstance(translated, EngineUnavailableError)
    assert "(No such file or directory)" in translated.message
    assert "systemctl start docker" in translated.remedy


def test_a_client_that_cannot_negotiate_a_version_means_no_engine() -> None:
    error = docker.errors.DockerException(
        "Error while fetching server API version: ('Connection aborted.', "
        "ConnectionRefusedError(111, 'Connection refused'))"
    )

    assert isinstance(translate(error, "connecting"), EngineUnavailableError)


def test_engine_call_chains_the_original_and_lets_other_errors_through() -> None:
    original = _api_error(409, "Container abc is not running")
    with pytest.raises(ContainerNotRunningError) as caught, engine_call("exec"):
        raise original
    assert caught.value.__cause__ is original

    with pytest.raises(KeyError), engine_call("exec"):
        raise KeyError("a bug, not an engine error")
