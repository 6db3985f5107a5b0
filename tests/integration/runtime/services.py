"""Specs for the tiny image, and starting them until their probe passes."""

from __future__ import annotations

import time
from typing import Any

from ozwald.common.v1 import service_spec_pb2 as spec_pb2

from ozwald_agent.runtime import ContainerInfo, DockerRuntime, ProbeResult, run_probe

TINY_IMAGE = "ozwald/tiny:local"
PORT = 8080
# A command that never serves, prints nothing and ends on SIGTERM (via the init process).
IDLE = ["sleep", "3600"]


def tiny(realm: str, name: str = "web", **fields: Any) -> spec_pb2.ServiceSpec:
    base: dict[str, Any] = {
        "realm": realm,
        "name": name,
        "image": TINY_IMAGE,
        "connector_port": PORT,
        "health_check": spec_pb2.HealthCheck(http=spec_pb2.HttpProbe(path="/healthz")),
    }
    return spec_pb2.ServiceSpec(**{**base, **fields})


def wait_ready(
    runtime: DockerRuntime, spec: spec_pb2.ServiceSpec, container: str, timeout_s: float = 5.0
) -> ProbeResult:
    deadline = time.monotonic() + timeout_s
    while True:
        result = run_probe(runtime, container, spec.health_check, spec.connector_port)
        if result.ok or time.monotonic() > deadline:
            return result
        time.sleep(0.02)


def start_service(
    runtime: DockerRuntime, spec: spec_pb2.ServiceSpec, fingerprint: str = "fp-1"
) -> ContainerInfo:
    """Creates and starts `spec`, waits for its probe when it has one, returns it running."""
    created = runtime.create(spec, fingerprint=fingerprint)
    runtime.start(created.id)
    if spec.HasField("health_check"):
        result = wait_ready(runtime, spec, created.id)
        assert result.ok, f"{spec.name} never became ready: {result.detail}"
    return runtime.inspect(created.id)
