"""The few facts about the host that admission cannot read from the HostProfile.

Each needs I/O (the Docker Engine, the network stack, the file system), so the planner
takes them through this protocol and stays a pure function of its inputs. The agent
passes an implementation backed by the Docker Engine and the kernel; tests pass an
in-memory one.
"""

from __future__ import annotations

from typing import Protocol


class HostFacts(Protocol):
    def image_present(self, reference: str) -> bool:
        """True when the image `reference` is in the local image store (never pulls)."""
        ...

    def host_port_free(self, host_ip: str, host_port: int) -> bool:
        """True when nothing listens on TCP `host_ip:host_port` ("0.0.0.0": any address)."""
        ...

    def path_exists(self, path: str) -> bool:
        """True when the absolute host `path` exists (file or directory)."""
        ...
