"""`python -m ozwald_testbed` (what `make fleet-testbed` runs), as a person uses it: `up`
returns with every host READY and leaves the fleet running; later commands find its
processes by themselves; `down` leaves nothing running and nothing of its network."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ozwald_testbed.netns import HostNamespaces
from ozwald_testbed.real_processes import find_processes

pytestmark = pytest.mark.integration

NETWORK = ["--subnet", "10.216.0.0/24", "--prefix", "ozcl-h", "--bridge", "ozcl-br0"]


def _testbed(workdir: Path, *args: str) -> str:
    argv = [sys.executable, "-m", "ozwald_testbed", "--workdir", str(workdir), *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}:\n{done.stderr}"
    return done.stdout


@pytest.fixture
def testbed(tiny_image: None, workdir: Path) -> Iterator[Path]:
    try:
        yield workdir
    finally:
        _testbed(workdir, "down")


def test_up_status_partition_restart_and_down(testbed: Path) -> None:
    up = _testbed(testbed, "up", "--hosts", "2", "--heartbeat-ttl", "2", *NETWORK)
    assert "h1: 10.216.0.11 in namespace ozcl-h1" in up
    assert "export OZWALD_ORCHESTRATOR=10.216.0.1:7443" in up
    # `up` has exited; the fleet runs on without it.
    assert len(find_processes(f"{testbed}/")) == 3

    status = _testbed(testbed, "status")
    assert status.count("orchestrator says READY") == 2, status

    _testbed(testbed, "partition", "h2")
    assert "h2 10.216.0.12: link DOWN (partitioned)" in _testbed(testbed, "status")
    _testbed(testbed, "heal", "h2")

    before = {p.pid for p in find_processes(f"{testbed}/")}
    _testbed(testbed, "kill-agent", "h1")
    assert "h1 10.216.0.11: link up, no agent" in _testbed(testbed, "status")
    _testbed(testbed, "start-agent", "h1")
    after = {p.pid for p in find_processes(f"{testbed}/")}
    assert len(after) == 3 and len(after - before) == 1

    down = _testbed(testbed, "down")
    assert "testbed down" in down
    assert find_processes(f"{testbed}/") == []
    assert not any(s.namespace_exists for s in _network().status())
    assert sorted(p.name for p in testbed.iterdir()) == ["ca", "logs"]


def _network() -> HostNamespaces:
    return HostNamespaces(
        count=2, subnet=ipaddress.IPv4Network("10.216.0.0/24"), prefix="ozcl-h", bridge="ozcl-br0"
    )
