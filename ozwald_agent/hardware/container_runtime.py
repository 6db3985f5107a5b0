"""The Docker Engine as the agent sees it: reachable or why not, and what it offers."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import docker
import docker.errors
from docker.constants import DEFAULT_DOCKER_API_VERSION
from docker.utils import kwargs_from_env
from ozwald.common.v1 import container_runtime_pb2 as runtime_pb2

from ozwald_agent.hardware.cdi import cdi_devices_in
from ozwald_agent.hardware.docker_errors import unreachable_reason

logger = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "unix:///var/run/docker.sock"
# Long enough for a busy engine on the same host, short enough that a hung engine does not
# stall the host profile: every query together gets this much.
DEFAULT_TIMEOUT_S = 2.0


def detect_container_runtime(
    environ: Mapping[str, str] | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
) -> runtime_pb2.ContainerRuntimeInfo:
    """Asks the engine named by DOCKER_HOST (default the local socket); never raises."""
    env = dict(os.environ if environ is None else environ)
    endpoint = env.get("DOCKER_HOST") or DEFAULT_ENDPOINT
    info = runtime_pb2.ContainerRuntimeInfo(kind="docker", endpoint=endpoint)
    deadline = time.monotonic() + timeout_s
    try:
        # A client with a fixed API version makes no request when it is built, so what fails
        # here is the address or TLS settings, not the engine. The SDK's parser lets some
        # malformed addresses escape as ValueError (e.g. a port that is not a number).
        probe = _client({**_client_args(env), "timeout": timeout_s})
    except (docker.errors.DockerException, ValueError) as e:
        return _unreachable(info, runtime_pb2.CONTAINER_RUNTIME_UNREACHABLE_REASON_BAD_ADDRESS, e)
    try:
        version = probe.version(api_version=False)
        if not isinstance(version, dict):
            raise docker.errors.DockerException(f"not a Docker Engine: /version gave {version!r}")
    except Exception as e:
        return _unreachable(info, unreachable_reason(e), e)
    finally:
        probe.close()
    info.reachable = True
    info.engine_version = str(version.get("Version", ""))
    info.api_version = str(version.get("ApiVersion", ""))
    _describe_engine(info, env, max(deadline - time.monotonic(), 0.1))
    return info


def _client(args: dict[str, Any]) -> docker.APIClient:
    # types-docker declares the timeout an int; the SDK hands it to requests, which takes
    # fractions of a second too.
    return docker.APIClient(**args)


def _client_args(env: dict[str, str]) -> dict[str, Any]:
    args: dict[str, Any] = {"base_url": DEFAULT_ENDPOINT, **kwargs_from_env(environment=env)}
    args["version"] = DEFAULT_DOCKER_API_VERSION
    return args


def _describe_engine(
    info: runtime_pb2.ContainerRuntimeInfo, env: dict[str, str], timeout_s: float
) -> None:
    args = {**_client_args(env), "version": info.api_version or None}
    try:
        # Versioned calls must use the engine's own API version: new engines refuse old ones.
        with _client({**args, "timeout": timeout_s}) as client:
            engine = client.info()
        if not isinstance(engine, dict):
            raise docker.errors.DockerException(f"/info gave {engine!r}")
    except Exception as e:
        info.detail = f"the engine answered its version but not `info`: {e}"
        logger.warning("docker info failed at %s: %s", info.endpoint, e)
        return
    info.storage_driver = str(engine.get("Driver") or "")
    info.cgroup_driver = str(engine.get("CgroupDriver") or "")
    info.cgroup_version = str(engine.get("CgroupVersion") or "")
    runtimes = engine.get("Runtimes")
    info.runtimes.extend(sorted(runtimes) if isinstance(runtimes, dict) else [])
    info.nvidia_runtime_available = "nvidia" in info.runtimes
    spec_dirs = [str(d) for d in engine.get("CDISpecDirs") or []]
    info.cdi_spec_dirs.extend(spec_dirs)
    info.cdi_devices.extend(_cdi_devices(engine, spec_dirs, info.endpoint))
    info.detail = f"Docker Engine {info.engine_version} (API {info.api_version})"


def _cdi_devices(engine: dict[str, Any], spec_dirs: list[str], endpoint: str) -> list[str]:
    discovered = engine.get("DiscoveredDevices")
    if isinstance(discovered, list):
        return [
            str(d["ID"])
            for d in discovered
            if isinstance(d, dict) and d.get("Source") == "cdi" and d.get("ID")
        ]
    # The spec dirs are paths on the engine's host: only read them when that is this host.
    if endpoint.startswith("unix://"):
        return cdi_devices_in(spec_dirs)
    return []


def _unreachable(
    info: runtime_pb2.ContainerRuntimeInfo,
    reason: runtime_pb2.ContainerRuntimeUnreachableReason.ValueType,
    error: Exception,
) -> runtime_pb2.ContainerRuntimeInfo:
    info.unreachable_reason = reason
    info.detail = f"cannot reach the Docker Engine at {info.endpoint}: {error}"
    logger.info("Docker Engine unreachable at %s: %s", info.endpoint, error)
    return info
