"""Facts about this host that admission checks before it promises anything.

- `image_present`: the agent never pulls, so an image that is not here is a refusal.
- `port_free`: a bind test on the address (what the engine's port proxy will need), with
  the name of the container publishing the port when one does. A port held by one of the
  caller's own containers that the plan keeps is not a conflict: the caller must treat it
  as its own (compare `PortCheck.container` with what it keeps).
- `path_exists` / `file_readable`: bind mount sources and env files, which are read on the
  agent's host.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import docker
import docker.errors

from ozwald_agent.runtime.docker_errors import engine_call

logger = logging.getLogger(__name__)

_WILDCARDS = ("", "0.0.0.0", "::")


@dataclass(frozen=True)
class PortCheck:
    """Whether `host_ip:port` can be bound now; `container` names who publishes it, if known."""

    free: bool
    detail: str
    container: str | None = None


class HostFacts(Protocol):
    def image_present(self, reference: str) -> bool: ...

    def port_free(self, host_ip: str, port: int) -> PortCheck: ...

    def path_exists(self, path: str) -> bool: ...

    def file_readable(self, path: str) -> bool: ...


class DockerHostFacts:
    """HostFacts from the local Docker Engine and the agent's own view of the host."""

    def __init__(self, client: Callable[[], docker.DockerClient]) -> None:
        self._client = client

    def image_present(self, reference: str) -> bool:
        """True when the image is here, named by reference (`repo:tag`, digest) or id."""
        with engine_call(f"looking up image {reference}", image=reference):
            try:
                self._client().images.get(reference)
            except docker.errors.ImageNotFound:
                return False
            except docker.errors.NotFound:
                return False
        return True

    def port_free(self, host_ip: str, port: int) -> PortCheck:
        where = f"{host_ip or '0.0.0.0'}:{port}"
        publisher = self._publisher(host_ip, port)
        problem = bind_problem(host_ip, port)
        if problem is None:
            return PortCheck(True, f"{where} is free")
        if publisher:
            return PortCheck(False, f"{where} is published by container {publisher}", publisher)
        return PortCheck(False, f"{where}: {problem}")

    def path_exists(self, path: str) -> bool:
        return os.path.exists(path)

    def file_readable(self, path: str) -> bool:
        return os.path.isfile(path) and os.access(path, os.R_OK)

    def _publisher(self, host_ip: str, port: int) -> str | None:
        """The running container publishing the port on that address (or a wildcard)."""
        try:
            summaries: list[dict[str, Any]] = self._client().api.containers(
                filters={"status": "running"}
            )
        except Exception as e:
            # Only decorates the answer; the bind test stands on its own.
            logger.debug("cannot list containers for a port check: %s", e)
            return None
        for summary in summaries:
            for binding in summary.get("Ports") or []:
                if binding.get("PublicPort") != port:
                    continue
                ip = str(binding.get("IP") or "")
                if ip in _WILDCARDS or host_ip in _WILDCARDS or ip == host_ip:
                    names = summary.get("Names") or [""]
                    return str(names[0]).lstrip("/") or str(summary.get("Id", ""))[:12]
        return None


def bind_problem(host_ip: str, port: int) -> str | None:
    """Why `host_ip:port` cannot be bound now, or None when it can."""
    address = host_ip or "0.0.0.0"
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    except ValueError:
        return f"{address!r} is not an IP address"
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # Like the engine's proxy: a port in TIME_WAIT is bindable.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return "address already in use"
            if e.errno == errno.EADDRNOTAVAIL:
                return f"{address} is not an address of this host"
            if e.errno == errno.EACCES:
                return f"binding port {port} needs privileges the agent lacks"
            return e.strerror or str(e)
    return None
