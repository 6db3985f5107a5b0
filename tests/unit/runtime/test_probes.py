"""Health probes: HTTP against a real loopback server, commands against a fake runtime."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator, Sequence

import pytest
from google.protobuf.duration_pb2 import Duration
from ozwald.common.v1 import service_spec_pb2 as spec_pb2

from ozwald_agent.runtime.errors import ContainerNotRunningError
from ozwald_agent.runtime.exec import ExecResult
from ozwald_agent.runtime.probes import ProbeResult, probe_command, probe_http, run_probe


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/slow":
            threading.Event().wait(2)
        status = {"/healthz": 200, "/moved": 302, "/slow": 200}.get(self.path, 503)
        body = b"warming up: 3 of 8 shards\nmore\n" if status == 503 else b"ok"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int]]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield "127.0.0.1", httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_2xx_is_healthy(server: tuple[str, int]) -> None:
    assert probe_http(*server, "/healthz", 2) == ProbeResult(True, "HTTP 200 OK")


def test_an_error_status_is_unhealthy_with_the_first_body_line(server: tuple[str, int]) -> None:
    assert probe_http(*server, "/loading", 2) == ProbeResult(
        False, "HTTP 503 Service Unavailable: warming up: 3 of 8 shards"
    )


def test_a_redirect_is_not_followed_and_not_healthy(server: tuple[str, int]) -> None:
    ok, detail = probe_http(*server, "/moved", 2)

    assert not ok
    assert detail.startswith("HTTP 302")


def test_a_refused_connection_and_a_timeout_say_so(server: tuple[str, int]) -> None:
    port = _closed_port()

    refused = probe_http("127.0.0.1", port, "/healthz", 2)
    slow = probe_http(*server, "/slow", 0.3)

    assert refused == ProbeResult(False, f"GET /healthz on 127.0.0.1:{port}: connection refused")
    assert not slow.ok
    assert "no answer within 0.3 s" in slow.detail


class _Target:
    """A ProbeTarget that answers from canned results."""

    def __init__(self, result: ExecResult | None = None, ip: str = "127.0.0.1") -> None:
        self.result = result
        self.ip = ip
        self.calls: list[tuple[str, list[str], float]] = []

    def container_ip(self, container: str, *, network: str | None = None) -> str:
        if not self.ip:
            raise ContainerNotRunningError(f"container {container} has no address")
        return self.ip

    def exec(self, container: str, argv: Sequence[str], *, timeout_s: float) -> ExecResult:
        self.calls.append((container, list(argv), timeout_s))
        assert self.result is not None
        return self.result


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (ExecResult(0, "ready\n"), ProbeResult(True, "exit 0: ready")),
        (ExecResult(1, "loading\nnot yet\n\n"), ProbeResult(False, "exit 1: not yet")),
        (
            ExecResult(None, "", timed_out=True),
            ProbeResult(False, "pg_isready: no exit within 3 s"),
        ),
    ],
)
def test_command_probes(result: ExecResult, expected: ProbeResult) -> None:
    target = _Target(result)

    assert probe_command(target, "db", ["pg_isready"], 3) == expected
    assert target.calls == [("db", ["pg_isready"], 3)]


def test_run_probe_uses_the_connector_port_and_the_checks_timeout(server: tuple[str, int]) -> None:
    host, port = server
    check = spec_pb2.HealthCheck(
        http=spec_pb2.HttpProbe(path="healthz"), timeout=Duration(seconds=1, nanos=500_000_000)
    )

    assert run_probe(_Target(ip=host), "web", check, connector_port=port) == ProbeResult(
        True, "HTTP 200 OK"
    )


def test_run_probe_runs_commands_and_reports_a_stopped_container() -> None:
    command = spec_pb2.HealthCheck(command=spec_pb2.CommandProbe(argv=["true"]))
    target = _Target(ExecResult(0, ""))
    http_check = spec_pb2.HealthCheck(http=spec_pb2.HttpProbe(path="/"))

    assert run_probe(target, "web", command, 0) == ProbeResult(True, "exit 0")
    assert target.calls[0][2] == 5.0  # the default timeout
    assert run_probe(_Target(ip=""), "web", http_check, 8080) == ProbeResult(
        False, "container web has no address"
    )
    assert run_probe(target, "web", http_check, 0).detail.startswith("the HTTP probe names no port")


def test_a_check_without_a_probe_is_always_ready() -> None:
    assert run_probe(_Target(), "web", spec_pb2.HealthCheck(), 8080).ok
