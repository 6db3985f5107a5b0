"""Network namespaces that make one machine look like several hosts on a private network.

Each testbed host `hN` gets a namespace `<prefix>N` (default `ozwald-h1`, `ozwald-h2`, ...)
holding one end of a veth pair, renamed `eth0` inside, with the address `.10+N` of the
subnet (default 10.213.0.0/24). The other end, `<prefix>N-v` on the machine itself, is a
port of a bridge that carries the subnet's first address (10.213.0.1): the machine's side,
where the orchestrator listens. An agent started in a namespace thus
reaches the orchestrator over its own link, from its own address, while the Docker socket,
a file, still reaches the one shared engine. Programs run there with `nsenter --net`, which
changes nothing but the network namespace (see `exec_argv`).

A partition is the machine-side veth set down: the agent's packets go nowhere and nothing
answers (no reset), as when a cable is pulled; healing sets it up again.

Everything goes through `ip` (iproute2) with argument lists. `up` and `down` are idempotent,
and `down` also removes what a killed run left behind (every namespace and veth named with
the prefix, whatever their number). Creating namespaces needs root (CAP_NET_ADMIN).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_SUBNET = ipaddress.IPv4Network("10.213.0.0/24")
DEFAULT_PREFIX = "ozwald-h"
DEFAULT_BRIDGE = "ozwald-br0"
INNER_INTERFACE = "eth0"
# Where `ip netns add` binds a namespace so it outlives its processes.
NETNS_DIR = Path("/run/netns")
# Hosts take .11, .12, ...: the low addresses stay free for the machine's side.
FIRST_HOST_OFFSET = 10
_IFNAME_MAX = 15  # IFNAMSIZ - 1
_IP_TIMEOUT_S = 30.0


class NetnsError(RuntimeError):
    """Setting up, changing or removing the testbed's namespaces failed."""


@dataclass(frozen=True)
class NamespaceHost:
    """One simulated host: its namespace, its links and its address."""

    index: int
    name: str
    namespace: str
    host_veth: str
    address: ipaddress.IPv4Address


@dataclass(frozen=True)
class LinkStatus:
    """What `ip` says about one host now."""

    host: NamespaceHost
    namespace_exists: bool
    link_up: bool


@dataclass(frozen=True)
class HostNamespaces:
    """`count` hosts in namespaces on a bridge; `prefix`, `bridge` and `subnet` let two
    testbeds (a walkthrough and a test run) live side by side."""

    count: int = 3
    subnet: ipaddress.IPv4Network = DEFAULT_SUBNET
    prefix: str = DEFAULT_PREFIX
    bridge: str = DEFAULT_BRIDGE

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"a testbed needs at least one host, not {self.count}")
        room = self.subnet.num_addresses - FIRST_HOST_OFFSET - 2
        if self.count > room:
            raise ValueError(
                f"{self.count} hosts do not fit in {self.subnet}: it has room for {room}; "
                "choose a larger subnet"
            )
        longest = self._veth_name(self.count)
        for name in (longest, self.bridge):
            if len(name) > _IFNAME_MAX:
                raise ValueError(
                    f"interface name {name!r} is longer than Linux's {_IFNAME_MAX} characters; "
                    "choose a shorter prefix or bridge name"
                )
        if not re.fullmatch(r"[a-z][a-z0-9-]*", self.prefix):
            raise ValueError(
                f"prefix {self.prefix!r}: use lower-case letters, digits and '-', "
                "starting with a letter"
            )

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        """The machine's address on the subnet (the bridge's): where agents dial."""
        return self.subnet.network_address + 1

    @property
    def hosts(self) -> list[NamespaceHost]:
        return [self.host(index) for index in range(1, self.count + 1)]

    def host(self, index: int) -> NamespaceHost:
        if not 1 <= index <= self.count:
            raise ValueError(f"no host {index}: this testbed has hosts 1 to {self.count}")
        return NamespaceHost(
            index=index,
            name=f"h{index}",
            namespace=f"{self.prefix}{index}",
            host_veth=self._veth_name(index),
            address=self.subnet.network_address + FIRST_HOST_OFFSET + index,
        )

    def host_named(self, name: str) -> NamespaceHost:
        """The host called `hN` (or by its namespace name)."""
        for host in self.hosts:
            if name in (host.name, host.namespace):
                return host
        known = ", ".join(host.name for host in self.hosts)
        raise ValueError(f"no host {name!r} in this testbed; its hosts are {known}")

    def up(self) -> None:
        """Create whatever of the bridge, namespaces and links is missing; leave the rest."""
        require_ip_and_root()
        links = _links()
        if self.bridge not in links:
            _ip("link", "add", self.bridge, "type", "bridge", "forward_delay", "0")
        _ip("addr", "replace", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        namespaces = _namespaces()
        for host in self.hosts:
            self._host_up(host, host.namespace in namespaces, host.host_veth in links)
        logger.info(
            "testbed network up: bridge %s at %s, hosts %s",
            self.bridge,
            self.gateway,
            ", ".join(f"{h.name}={h.address}" for h in self.hosts),
        )

    def down(self) -> None:
        """Remove every namespace and veth with the prefix, and the bridge; quiet when
        nothing is there. Processes still inside a namespace keep it alive but lose its
        name and its link, so stop them first."""
        require_ip_and_root()
        own = re.compile(rf"{re.escape(self.prefix)}\d+")
        for namespace in sorted(_namespaces()):
            if own.fullmatch(namespace):
                _ip("netns", "delete", namespace)
        own_veth = re.compile(rf"{re.escape(self.prefix)}\d+-v")
        for link in sorted(_links()):
            if own_veth.fullmatch(link) or link == self.bridge:
                # Deleting a namespace takes its veth pairs along, a moment later.
                _ip_unless_gone("link", "delete", link)
        logger.info("testbed network down (prefix %s, bridge %s)", self.prefix, self.bridge)

    def partition(self, host: NamespaceHost) -> None:
        """Cut `host` off: its link goes down, so its packets vanish without an answer."""
        _ip("link", "set", host.host_veth, "down")
        logger.info("partitioned %s (%s down)", host.name, host.host_veth)

    def heal(self, host: NamespaceHost) -> None:
        _ip("link", "set", host.host_veth, "up")
        logger.info("healed %s (%s up)", host.name, host.host_veth)

    def status(self) -> list[LinkStatus]:
        namespaces = _namespaces()
        links = _links()
        return [
            LinkStatus(
                host=host,
                namespace_exists=host.namespace in namespaces,
                link_up="UP" in links.get(host.host_veth, {}).get("flags", []),
            )
            for host in self.hosts
        ]

    def exec_argv(self, host: NamespaceHost, argv: Sequence[str]) -> list[str]:
        """`argv` run in `host`'s network namespace, and only there.

        `nsenter --net` switches the network namespace and execs `argv` (same pid). It is
        used rather than `ip netns exec`, which also gives the program a mount namespace of
        its own: an agent's mounts (the tmpfs for secret files, FUSE volumes) would then be
        invisible to the shared Docker Engine that bind-mounts them into containers.
        """
        return [_nsenter_binary(), f"--net={NETNS_DIR / host.namespace}", "--", *argv]

    def _host_up(self, host: NamespaceHost, has_namespace: bool, has_veth: bool) -> None:
        if not has_namespace:
            _ip("netns", "add", host.namespace)
        if has_veth and not self._inner_interface_present(host):
            # Half of a pair from an interrupted run: start that link again.
            _ip("link", "delete", host.host_veth)
            has_veth = False
        if not has_veth:
            _ip(
                "link",
                "add",
                host.host_veth,
                "type",
                "veth",
                "peer",
                "name",
                INNER_INTERFACE,
                "netns",
                host.namespace,
            )
        _ip("link", "set", host.host_veth, "master", self.bridge)
        _ip("link", "set", host.host_veth, "up")
        inside = ("-n", host.namespace)
        _ip(*inside, "link", "set", "lo", "up")
        cidr = f"{host.address}/{self.subnet.prefixlen}"
        _ip(*inside, "addr", "replace", cidr, "dev", INNER_INTERFACE)
        _ip(*inside, "link", "set", INNER_INTERFACE, "up")
        _ip(*inside, "route", "replace", "default", "via", str(self.gateway))

    def _inner_interface_present(self, host: NamespaceHost) -> bool:
        shown = _run_ip(["-n", host.namespace, "-j", "link", "show", INNER_INTERFACE])
        return shown.returncode == 0

    def _veth_name(self, index: int) -> str:
        return f"{self.prefix}{index}-v"


def require_ip_and_root() -> None:
    """Raise with what to do when `ip` or `nsenter` is missing, or this process may not
    use them."""
    _ip_binary()
    _nsenter_binary()
    if os.geteuid() != 0:
        raise NetnsError(
            "network namespaces need root (CAP_NET_ADMIN) and this process runs as uid "
            f"{os.geteuid()}: run the testbed as root (e.g. sudo make fleet-testbed)"
        )


def _ip_binary() -> str:
    found = shutil.which("ip")
    if found is None:
        raise NetnsError(
            "the `ip` command (iproute2) is not installed: install it "
            "(apt-get install iproute2) and try again"
        )
    return found


def _nsenter_binary() -> str:
    found = shutil.which("nsenter")
    if found is None:
        raise NetnsError(
            "the `nsenter` command (util-linux) is not installed: install it "
            "(apt-get install util-linux) and try again"
        )
    return found


def _run_ip(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_ip_binary(), *args],
        capture_output=True,
        text=True,
        timeout=_IP_TIMEOUT_S,
        check=False,
    )


def _ip(*args: str) -> str:
    done = _run_ip(args)
    if done.returncode != 0:
        raise NetnsError(
            f"`ip {' '.join(args)}` failed with exit {done.returncode}: "
            f"{done.stderr.strip() or done.stdout.strip()}"
        )
    return done.stdout


def _ip_unless_gone(*args: str) -> None:
    done = _run_ip(args)
    if done.returncode != 0 and "Cannot find device" not in done.stderr:
        raise NetnsError(
            f"`ip {' '.join(args)}` failed with exit {done.returncode}: {done.stderr.strip()}"
        )


def _namespaces() -> set[str]:
    # `ip netns list` prints "NAME" or "NAME (id: N)"; the JSON form is absent on old iproute2.
    return {line.split()[0] for line in _ip("netns", "list").splitlines() if line.strip()}


def _links() -> dict[str, dict[str, Any]]:
    shown: list[dict[str, Any]] = json.loads(_ip("-j", "link", "show") or "[]")
    return {str(link["ifname"]): link for link in shown}
