"""A real fleet for each test: an orchestrator and three real agents in network namespaces
of their own, on a subnet, prefix and bridge apart from the walkthrough's (so a testbed
someone runs by hand is untouched), removed afterwards whatever happened."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ozwald_testbed.real_fleet import HealthTimings, RealFleet, TestbedSettings, running_fleet

# Short enough that a test waits seconds; long enough that on a loaded 2-core machine no
# heartbeat is missed and a restarted agent is back before its host is LOST. A host is DOWN
# after 2 s of silence and LOST 5 s later.
TIMINGS = HealthTimings(heartbeat_interval=0.5, heartbeat_ttl=2.0, reschedule_grace=5.0)


@pytest.fixture
def fleet(tiny_image: None, workdir: Path, realm: str) -> Iterator[RealFleet]:
    """Asks for `realm` so the realm's cleanup runs after the agents stopped: a running
    agent would start again what the cleanup removes."""
    settings = TestbedSettings(
        workdir=workdir,
        hosts=3,
        subnet="10.218.0.0/24",
        prefix="ozft-h",
        bridge="ozft-br0",
        port=7443,
        timings=TIMINGS,
    )
    with running_fleet(settings) as fleet:
        try:
            yield fleet
        finally:
            # pytest shows this output only for a test that failed: the logs are the
            # finding, and the work directory is removed with the test.
            _report_logs(fleet)


def _report_logs(fleet: RealFleet) -> None:
    for log in sorted((fleet.workdir / "logs").glob("*.log")):
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-60:])
        print(f"----- {log.name} (last 60 lines)\n{tail}")
