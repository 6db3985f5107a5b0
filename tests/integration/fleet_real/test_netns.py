"""The testbed's namespaces for real: hosts reach the machine's side from their own address,
a partition cuts a host off without an answer, healing restores it, and `down` leaves
nothing behind, also after a run that was killed halfway."""

from __future__ import annotations

import ipaddress
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from ozwald_testbed.netns import HostNamespaces, _links, _namespaces

pytestmark = pytest.mark.integration

# Another subnet, prefix and bridge than the walkthrough's, so a running testbed is untouched.
NETWORK = HostNamespaces(
    count=2,
    subnet=ipaddress.IPv4Network("10.219.0.0/24"),
    prefix="oznt-h",
    bridge="oznt-br0",
)

# Connects to HOST:PORT from inside a namespace and prints the address the peer saw.
_DIAL = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])) as s:
    print(s.recv(64).decode())
"""


@pytest.fixture
def network() -> Iterator[HostNamespaces]:
    NETWORK.down()
    NETWORK.up()
    try:
        yield NETWORK
    finally:
        NETWORK.down()


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP server on the machine's side that tells each caller its address."""
    server = socket.create_server((str(NETWORK.gateway), 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, peer = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(peer[0].encode())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        server.close()


def _dial_from(index: int, port: int, timeout: float = 2.0) -> subprocess.CompletedProcess[str]:
    host = NETWORK.host(index)
    argv = [sys.executable, "-c", _DIAL, str(NETWORK.gateway), str(port), str(timeout)]
    return subprocess.run(
        NETWORK.exec_argv(host, argv), capture_output=True, text=True, timeout=30, check=False
    )


def test_each_host_reaches_the_machine_from_its_own_address(
    network: HostNamespaces, listener: int
) -> None:
    for host in network.hosts:
        done = _dial_from(host.index, listener)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == str(host.address)


def test_the_machine_reaches_each_host(network: HostNamespaces) -> None:
    host = network.host(2)
    server = subprocess.Popen(
        network.exec_argv(
            host,
            [
                sys.executable,
                "-c",
                "import http.server as h; h.test(h.BaseHTTPRequestHandler, "
                "port=18999, bind='0.0.0.0')",
            ],
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(50):
            try:
                with socket.create_connection((str(host.address), 18999), timeout=1):
                    break
            except OSError:
                server.poll()
                assert server.returncode is None
                threading.Event().wait(0.1)
        else:
            pytest.fail(f"nothing answered on {host.address}:18999")
    finally:
        server.kill()
        server.wait()


def test_a_partition_cuts_one_host_off_until_healed(network: HostNamespaces, listener: int) -> None:
    cut, other = network.host(1), network.host(2)
    network.partition(cut)
    assert [s.link_up for s in network.status()] == [False, True]

    refused = _dial_from(cut.index, listener, timeout=1.0)
    assert refused.returncode != 0
    # No reset, no "unreachable": the packets vanish, as on a pulled cable.
    assert "timed out" in refused.stderr
    assert _dial_from(other.index, listener).returncode == 0

    network.heal(cut)
    assert all(s.link_up for s in network.status())
    healed = _dial_from(cut.index, listener)
    assert healed.returncode == 0, healed.stderr
    assert healed.stdout.strip() == str(cut.address)


def test_up_twice_changes_nothing_and_down_removes_everything(network: HostNamespaces) -> None:
    before = sorted(_links())
    network.up()
    assert sorted(_links()) == before
    assert all(s.namespace_exists and s.link_up for s in network.status())

    network.down()
    network.down()
    assert not any(n.startswith(network.prefix) for n in _namespaces())
    assert not any(link.startswith(network.prefix) or link == network.bridge for link in _links())


def test_down_removes_what_a_killed_run_left_behind(network: HostNamespaces) -> None:
    # A run of a larger testbed was killed: host 3 exists though this testbed has two hosts,
    # and host 2's inner end is gone while its machine-side end stayed.
    bigger = HostNamespaces(
        count=3, subnet=network.subnet, prefix=network.prefix, bridge=network.bridge
    )
    bigger.up()
    subprocess.run(["ip", "-n", network.host(2).namespace, "link", "delete", "eth0"], check=True)
    network.up()
    assert all(s.namespace_exists and s.link_up for s in network.status())

    network.down()
    assert not any(n.startswith(network.prefix) for n in _namespaces())
    assert not any(link.startswith(network.prefix) or link == network.bridge for link in _links())
