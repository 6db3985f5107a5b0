"""Health probes the agent runs itself (Docker's own HEALTHCHECK is not used).

The agent owns the probe schedule (start period, interval, retries) because it owns the
states built on it (starting, ready, unhealthy); Docker's healthcheck would only add a
second, unsynchronised opinion. This module runs one probe and says how it went:

- HTTP: GET http://<container IP on the realm network>:<port><path>, straight from the
  agent's host to the container over the bridge (no portal needed), 2xx is healthy,
  redirects are not followed.
- Command: the argv run inside the container (exec, no shell), exit 0 is healthy.

Each returns `ProbeResult(ok, detail)`; `detail` is one line for people ("HTTP 503 Service
Unavailable", "connection refused", "exit 1: <last output line>").
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Sequence
from typing import NamedTuple, Protocol

from google.protobuf import duration_pb2
from ozwald.common.v1 import service_spec_pb2

from ozwald_agent.runtime.errors import ContainerRuntimeError
from ozwald_agent.runtime.exec import ExecResult

DEFAULT_TIMEOUT_S = 5.0
_BODY_SNIPPET_BYTES = 200
_HTTP_OK_MIN = 200
_HTTP_OK_MAX = 299
USER_AGENT = "ozwald-agent-probe"


class ProbeResult(NamedTuple):
    ok: bool
    detail: str


class ProbeTarget(Protocol):
    """What a probe needs from the runtime (DockerRuntime fits)."""

    def container_ip(self, container: str, *, network: str | None = None) -> str: ...

    def exec(self, container: str, argv: Sequence[str], *, timeout_s: float) -> ExecResult: ...


def probe_http(host: str, port: int, path: str, timeout_s: float) -> ProbeResult:
    """One GET; healthy on 2xx within `timeout_s` (for the whole exchange)."""
    if not path.startswith("/"):
        path = f"/{path}"
    deadline = time.monotonic() + timeout_s
    connection = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        connection.request("GET", path, headers={"User-Agent": USER_AGENT})
        connection.sock.settimeout(max(deadline - time.monotonic(), 0.001))
        response = connection.getresponse()
        body = response.read(_BODY_SNIPPET_BYTES)
    except TimeoutError:
        return ProbeResult(False, f"GET {path} on {host}:{port}: no answer within {timeout_s:g} s")
    except ConnectionRefusedError:
        return ProbeResult(False, f"GET {path} on {host}:{port}: connection refused")
    except (OSError, http.client.HTTPException) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e) or repr(e)
        return ProbeResult(False, f"GET {path} on {host}:{port}: {reason}")
    finally:
        connection.close()
    status = f"HTTP {response.status} {response.reason}".strip()
    if _HTTP_OK_MIN <= response.status <= _HTTP_OK_MAX:
        return ProbeResult(True, status)
    snippet = body.decode("utf-8", errors="replace").strip().splitlines()
    return ProbeResult(False, f"{status}: {snippet[0]}" if snippet else status)


def probe_command(
    target: ProbeTarget, container: str, argv: Sequence[str], timeout_s: float
) -> ProbeResult:
    """Runs `argv` in the container; healthy on exit 0 within `timeout_s`."""
    if not argv:
        return ProbeResult(False, "the command probe has no command")
    try:
        result = target.exec(container, argv, timeout_s=timeout_s)
    except ContainerRuntimeError as e:
        return ProbeResult(False, str(e))
    last = next((line for line in reversed(result.output.splitlines()) if line.strip()), "")
    if result.timed_out:
        return ProbeResult(False, f"{argv[0]}: no exit within {timeout_s:g} s")
    if result.exit_code == 0:
        return ProbeResult(True, f"exit 0{': ' + last if last else ''}")
    return ProbeResult(False, f"exit {result.exit_code}{': ' + last if last else ''}")


def run_probe(
    target: ProbeTarget,
    container: str,
    check: service_spec_pb2.HealthCheck,
    connector_port: int,
    *,
    network: str | None = None,
) -> ProbeResult:
    """The spec's probe against `container`; a check without a probe is always healthy."""
    timeout_s = _seconds(check.timeout) or DEFAULT_TIMEOUT_S
    which = check.WhichOneof("probe")
    if which == "http":
        port = check.http.port or connector_port
        if not port:
            return ProbeResult(False, "the HTTP probe names no port and there is no connector")
        try:
            host = target.container_ip(container, network=network)
        except ContainerRuntimeError as e:
            return ProbeResult(False, str(e))
        return probe_http(host, port, check.http.path or "/", timeout_s)
    if which == "command":
        return probe_command(target, container, list(check.command.argv), timeout_s)
    return ProbeResult(True, "no probe: running counts as ready")


def _seconds(duration: duration_pb2.Duration) -> float:
    return duration.seconds + duration.nanos / 1e9
