"""Container engine detection against a stand-in engine on a unix socket (no Docker here)."""

from __future__ import annotations

import json
import re
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import requests.exceptions
import urllib3.exceptions
from ozwald.common.v1 import container_runtime_pb2 as runtime_pb2

from ozwald_agent.hardware.container_runtime import detect_container_runtime
from ozwald_agent.hardware.docker_errors import unreachable_reason
from tests.support.short_paths import short_tmpdir

VERSION = {"Version": "28.3.0", "ApiVersion": "1.51", "MinAPIVersion": "1.24"}
INFO = {
    "ServerVersion": "28.3.0",
    "Driver": "overlay2",
    "CgroupDriver": "systemd",
    "CgroupVersion": "2",
    "Runtimes": {"runc": {"path": "runc"}, "nvidia": {"path": "nvidia-container-runtime"}},
    "CDISpecDirs": ["/etc/cdi", "/var/run/cdi"],
    "DiscoveredDevices": [
        {"Source": "cdi", "ID": "nvidia.com/gpu=0"},
        {"Source": "cdi", "ID": "nvidia.com/gpu=all"},
        {"Source": "other", "ID": "not-cdi"},
    ],
}


class FakeEngine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Answers /version and /info like a Docker Engine; remembers the paths it was asked."""

    daemon_threads = True

    def __init__(self, path: Path, answers: Mapping[str, tuple[int, object]]) -> None:
        self.answers = answers
        self.paths: list[str] = []
        super().__init__(str(path), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: FakeEngine

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        endpoint = re.sub(r"^/v[0-9.]+", "", self.path)
        status, body = self.server.answers.get(endpoint, (404, {"message": "page not found"}))
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test asserts on what the engine was asked instead."""


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    with short_tmpdir() as path:
        yield path


Serve = Callable[[Path, Mapping[str, tuple[int, object]]], FakeEngine]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Starts fake engines on the sockets asked for; stops them all after the test."""
    started: list[FakeEngine] = []

    def start(path: Path, answers: Mapping[str, tuple[int, object]]) -> FakeEngine:
        engine = FakeEngine(path, answers)
        threading.Thread(target=engine.serve_forever, args=(0.01,), daemon=True).start()
        started.append(engine)
        return engine

    yield start
    for engine in started:
        engine.shutdown()
        engine.server_close()


@pytest.fixture
def engine(socket_dir: Path, serve: Serve) -> FakeEngine:
    return serve(socket_dir / "docker.sock", {"/version": (200, VERSION), "/info": (200, INFO)})


def test_a_reachable_engine_is_described(engine: FakeEngine, socket_dir: Path) -> None:
    endpoint = f"unix://{socket_dir}/docker.sock"

    info = detect_container_runtime({"DOCKER_HOST": endpoint})

    assert info.reachable
    assert info.unreachable_reason == runtime_pb2.CONTAINER_RUNTIME_UNREACHABLE_REASON_UNSPECIFIED
    assert (info.kind, info.endpoint) == ("docker", endpoint)
    assert (info.engine_version, info.api_version) == ("28.3.0", "1.51")
    assert (info.storage_driver, info.cgroup_driver, info.cgroup_version) == (
        "overlay2",
        "systemd",
        "2",
    )
    assert list(info.runtimes) == ["nvidia", "runc"]
    assert info.nvidia_runtime_available
    assert list(info.cdi_spec_dirs) == ["/etc/cdi", "/var/run/cdi"]
    assert list(info.cdi_devices) == ["nvidia.com/gpu=0", "nvidia.com/gpu=all"]
    # New engines refuse old API versions: `info` must be asked at the engine's own.
    assert engine.paths == ["/version", "/v1.51/info"]


def test_cdi_devices_are_read_from_spec_files_when_the_engine_does_not_list_them(
    socket_dir: Path, serve: Serve
) -> None:
    spec_dir = socket_dir / "cdi"
    spec_dir.mkdir()
    (spec_dir / "nvidia.json").write_text(
        json.dumps({"kind": "nvidia.com/gpu", "devices": [{"name": "0"}, {"name": "all"}]})
    )
    docker_27 = {k: v for k, v in INFO.items() if k not in ("DiscoveredDevices", "Runtimes")} | {
        "CDISpecDirs": [str(spec_dir)]
    }
    serve(socket_dir / "d.sock", {"/version": (200, VERSION), "/info": (200, docker_27)})

    info = detect_container_runtime({"DOCKER_HOST": f"unix://{socket_dir}/d.sock"})

    assert list(info.cdi_devices) == ["nvidia.com/gpu=0", "nvidia.com/gpu=all"]
    assert not info.nvidia_runtime_available
    assert list(info.runtimes) == []


def test_an_engine_that_fails_info_is_reachable_with_the_failure_in_detail(
    socket_dir: Path, serve: Serve
) -> None:
    answers = {"/version": (200, VERSION), "/info": (500, {"message": "storage is on fire"})}
    serve(socket_dir / "d.sock", answers)

    info = detect_container_runtime({"DOCKER_HOST": f"unix://{socket_dir}/d.sock"})

    assert info.reachable
    assert info.engine_version == "28.3.0"
    assert "storage is on fire" in info.detail
    assert info.storage_driver == ""


def test_an_engine_that_fails_version_is_an_api_error(socket_dir: Path, serve: Serve) -> None:
    serve(socket_dir / "d.sock", {"/version": (500, {"message": "daemon is starting"})})

    info = detect_container_runtime({"DOCKER_HOST": f"unix://{socket_dir}/d.sock"})

    assert not info.reachable
    assert info.unreachable_reason == runtime_pb2.CONTAINER_RUNTIME_UNREACHABLE_REASON_API_ERROR
    assert "daemon is starting" in info.detail


def test_no_socket_is_socket_missing(socket_dir: Path) -> None:
    info = detect_container_runtime({"DOCKER_HOST": f"unix://{socket_dir}/absent.sock"})

    assert not info.reachable
    assert (
        info.unreachable_reason == runtime_pb2.CONTAINER_RUNTIME_UNREACHABLE_REASON_SOCKET_MISSING
    )
    assert "No such file or directory" in info.detail


def test_a_socket_nobody_listens_on_is_connection_refused(socket_dir: Path) -> None:
    with socket.socket(socket.AF_UNIX) as orphan:
        orphan.bind(str(socket_dir / "orphan.sock"))

    info = detect_container_runtime({"DOCKER_HOST": f"unix://{socket_dir}/orphan.sock"})

    assert (
        info.unreachable_reason
        == runtime_pb2.CONTAINER_RUNTIME_UNREACHABLE_REASON_CONNECTION_REFUSED
    )


def test_an_engine_that_never_answers_is_a_timeout(socket_dir: Path) -> None:
    with socket.socket(socket.AF_UNIX) as hung:
        hung.bind(str(socket_dir / "hung.sock"))
        hung.listen()  # connections queue up, nobody ever reads them

        info = detect_container_runtime(
            {"DOCKER_HOST": f"unix://{socket_dir}/hung.sock"}, timeout_s=0.2
        )

    assert info.unreachable_reason == runtime_pb2.CONTAINER_RUNTIME_UNREACHABLE_REASON_TIMEOUT


@pytest.mark.parametrize("address", ["foo://bar", "tcp://host:notaport"])
def test_a_malformed_docker_host_is_a_bad_address(address: str) -> None:
    info = detect_container_runtime({"DOCKER_HOST": address})

    assert info.endpoint == address
    assert info.unreachable_reason == runtime_pb2.CONTAINER_RUNTIME_UNREACHABLE_REASON_BAD_ADDRESS


def test_permission_denied_is_found_inside_the_sdks_wrapping() -> None:
    # Root (as in CI) may open any socket, so build the chain the SDK raises for a user
    # outside the docker group: ConnectionError <- ProtocolError <- PermissionError.
    denied = PermissionError(13, "Permission denied")
    aborted = urllib3.exceptions.ProtocolError("Connection aborted.", denied)
    error = requests.exceptions.ConnectionError(aborted)

    assert (
        unreachable_reason(error)
        == runtime_pb2.CONTAINER_RUNTIME_UNREACHABLE_REASON_PERMISSION_DENIED
    )


def test_an_unrecognised_failure_is_an_api_error() -> None:
    assert unreachable_reason(RuntimeError("odd")) == (
        runtime_pb2.CONTAINER_RUNTIME_UNREACHABLE_REASON_API_ERROR
    )


def test_something_else_on_the_socket_is_an_api_error(socket_dir: Path, serve: Serve) -> None:
    serve(socket_dir / "d.sock", {"/version": (200, ["not", "docker"])})

    info = detect_container_runtime({"DOCKER_HOST": f"unix://{socket_dir}/d.sock"})

    assert not info.reachable
    assert info.unreachable_reason == runtime_pb2.CONTAINER_RUNTIME_UNREACHABLE_REASON_API_ERROR
    assert "not a Docker Engine" in info.detail
