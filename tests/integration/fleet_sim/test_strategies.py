"""Placement strategies chosen per deployment, on the simulated testbed: the real
orchestrator process (with a strategy plugin installed from a throwaway distribution, as
a third party would ship one), twelve simulated hosts."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from ozwald_sdk.errors import DeploymentInvalidError
from tests.integration.fleet_sim.conftest import HOSTS, SETTINGS
from tests.integration.fleet_sim.simbed import SimBed, cpu_deployment
from tests.support.strategy_plugin import write_distribution

pytestmark = pytest.mark.integration

SLACK = 15.0


async def _connected(bed: SimBed) -> bool:
    # Every host, not only those the store had: a host that joined just before the
    # orchestrator was killed may not have been written yet.
    hosts = await bed.hosts()
    return len(hosts) == HOSTS and all(h.connected for h in hosts.values())


@pytest.mark.asyncio
async def test_binpack_and_spread_deployments_land_differently(simbed: SimBed) -> None:
    packed = cpu_deployment("packed", 4, spread=False)
    packed.strategy = "binpack"
    spread = cpu_deployment("spread", 4, spread=False)
    spread.strategy = "spread"
    await simbed.apply([packed, spread])
    await simbed.wait_all_running("packed", 4)
    await simbed.wait_all_running("spread", 4)

    packed_hosts = {i.host_id for i in await simbed.instances("packed")}
    spread_hosts = {i.host_id for i in await simbed.instances("spread")}
    assert len(packed_hosts) == 1, "binpack fills one host"
    assert len(spread_hosts) == 4, "spread takes the emptiest hosts, one each"
    explained = await simbed.call(simbed.client.explain_deployment, "spread")
    assert explained.strategy == "spread"


@pytest.mark.asyncio
async def test_an_unknown_strategy_is_refused_naming_the_known_ones(simbed: SimBed) -> None:
    typo = cpu_deployment("web", 1)
    typo.strategy = "sprad"
    with pytest.raises(DeploymentInvalidError) as raised:
        await simbed.apply([typo])
    assert "unknown placement strategy 'sprad' (did you mean 'spread'?)" in str(raised.value)
    assert "binpack, fgd, spread" in str(raised.value)
    assert await simbed.instances() == []


@pytest.mark.asyncio
async def test_the_orchestrator_loads_a_plugin_strategy_and_places_with_it(
    simbed: SimBed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = write_distribution(
        tmp_path / "site", entry_points={"last-host-id": "last_host_id_strategy:LastHostId"}
    )
    # The orchestrator process inherits this environment when it is started again.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    simbed.orchestrator.restart()
    await simbed.wait_until("the agents reconnected", lambda: _connected(simbed), SLACK)

    web = cpu_deployment("web", 3, spread=False)
    web.strategy = "last-host-id"
    await simbed.apply([web])
    await simbed.wait_all_running("web", 3)
    last = max(await simbed.hosts())
    instances = await simbed.instances("web")
    assert {i.host_id for i in instances} == {last}
    explained = await simbed.call(simbed.client.explain_deployment, "web")
    assert explained.strategy == "last-host-id"

    # As the default (`--strategy`), it places every deployment that names none.
    simbed.orchestrator.settings = dataclasses.replace(SETTINGS, strategy="last-host-id")
    simbed.orchestrator.restart()
    await simbed.wait_until("the agents reconnected", lambda: _connected(simbed), SLACK)
    await simbed.apply([web, cpu_deployment("plain", 2, spread=False)])
    await simbed.wait_all_running("plain", 2)
    assert {i.host_id for i in await simbed.instances("plain")} == {last}
    assert simbed.duplicates() == {}


@pytest.mark.asyncio
async def test_fgd_keeps_cpu_work_off_the_gpu_hosts(simbed: SimBed) -> None:
    work = cpu_deployment("cpu-work", 2, spread=False)
    work.strategy = "fgd"
    await simbed.apply([work])
    await simbed.wait_all_running("cpu-work", 2)
    instances = await simbed.instances("cpu-work")
    assert (await simbed.call(simbed.client.explain_deployment, "cpu-work")).strategy == "fgd"
    # Nothing fragments either way; of the hosts that tie, fgd takes the one left with the
    # least free VRAM: the one without GPUs, keeping the GPU hosts' cores for GPU work.
    hosts = await simbed.hosts()
    assert {hosts[i.host_id].labels["fixture"] for i in instances} == {"cpu_only"}
