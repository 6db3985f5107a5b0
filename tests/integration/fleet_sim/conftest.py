"""A real orchestrator process and ten-plus simulated agents from the hardware fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from ozwald_testbed.sim_orchestrator import OrchestratorProcess, OrchestratorSettings
from ozwald_testbed.sim_pki import FleetPki
from ozwald_testbed.simulated_fleet import SimulatedFleet, hosts_from_fixtures
from ozwald_testbed.simulated_runtime import RuntimeTiming
from tests.integration.fleet_sim.simbed import SimBed
from tests.support.short_paths import short_tmpdir

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hardware"
HOSTS = 12
# Quicker than the defaults (1 s, 3 s, 5 s) so scenarios take seconds, with enough margin
# over the interval that a busy shared machine does not make hosts flap.
SETTINGS = OrchestratorSettings(
    heartbeat_interval_s=0.5, heartbeat_ttl_s=2.0, reschedule_grace_s=3.0
)
TIMING = RuntimeTiming(ready_after_s=0.2, restart_after_s=0.2, stop_after_s=0.1)


@pytest.fixture(scope="module")
def pki() -> Iterator[FleetPki]:
    with short_tmpdir() as path:
        yield FleetPki(path / "pki")


@pytest_asyncio.fixture
async def simbed(pki: FleetPki) -> AsyncIterator[SimBed]:
    with short_tmpdir() as work:
        orchestrator = OrchestratorProcess(work, pki, SETTINGS)
        orchestrator.start()
        fleet = SimulatedFleet(orchestrator.target, pki, timing=TIMING)
        fleet.add_all(hosts_from_fixtures(FIXTURES, HOSTS))
        client = orchestrator.client()
        bed = SimBed(orchestrator, fleet, client, work)
        try:
            await fleet.start()
            await fleet.wait_connected(20)
            yield bed
        finally:
            await fleet.stop()
            client.close()
            orchestrator.stop()
