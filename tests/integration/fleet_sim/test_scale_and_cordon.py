"""Scale and cordon on the simulated testbed: the real orchestrator process, twelve
simulated hosts. What is asserted is what operators see through FleetService and the CLI,
and what the simulated hosts' runtimes actually run."""

from __future__ import annotations

import asyncio

import pytest
from ozwald.orchestrator.v1 import fleet_state_pb2

from ozwald_sdk.cli.main import main
from ozwald_sdk.errors import ExitCode
from tests.integration.fleet_sim.conftest import HOSTS
from tests.integration.fleet_sim.simbed import SimBed, cpu_deployment

pytestmark = pytest.mark.integration

PENDING = fleet_state_pb2.INSTANCE_STATE_PENDING
SLACK = 15.0


async def _ozwald(bed: SimBed, *argv: str) -> int:
    """The CLI, as an operator runs it, against the orchestrator's unix socket."""
    return await asyncio.to_thread(main, ["--orchestrator", bed.orchestrator.socket_target, *argv])


async def _runs_exactly(bed: SimBed, deployment: str, names: list[str]) -> None:
    async def check() -> bool:
        running = {i for i in bed.running_on_hosts() if i.startswith(f"{deployment}-")}
        return running == set(names)

    await bed.wait_until(f"the hosts run exactly {names}", check, SLACK)


@pytest.mark.asyncio
async def test_scale_up_down_to_zero_and_back(
    simbed: SimBed, capsys: pytest.CaptureFixture[str]
) -> None:
    await simbed.apply([cpu_deployment("web", 2)])
    await simbed.wait_all_running("web", 2)
    first = simbed.container_ids()

    assert await _ozwald(simbed, "scale", "web", "5") == ExitCode.OK
    assert "Scaled web from 2 to 5 replica(s)" in capsys.readouterr().out
    await simbed.wait_all_running("web", 5)
    # The two that ran were not touched: same hosts, same containers.
    for key, container in first.items():
        assert simbed.container_ids()[key] == container
    assert len({i.host_id for i in await simbed.instances("web")}) == 5, "spread still holds"

    await simbed.call(simbed.client.scale_deployment, "web", 1)
    await _runs_exactly(simbed, "web", ["web-0"])
    assert [i.id for i in await simbed.instances("web")] == ["web-0"]

    response = await simbed.call(simbed.client.scale_deployment, "web", 0)
    assert response.deployment.replicas == 0
    await _runs_exactly(simbed, "web", [])
    kept = await simbed.call(simbed.client.get_deployment, "web")
    assert kept.deployment.replicas == 0 and list(kept.instances) == []

    await simbed.call(simbed.client.scale_deployment, "web", 3)
    await simbed.wait_all_running("web", 3)
    await _runs_exactly(simbed, "web", ["web-0", "web-1", "web-2"])
    assert simbed.duplicates() == {}
    # Every scale is a stored version: 1 (apply), then 2, 3, 4, 5.
    assert kept.deployment.version == 4
    assert (await simbed.call(simbed.client.get_deployment, "web")).deployment.version == 5
    events = await simbed.call(lambda: list(simbed.client.watch_events(follow=False)))
    assert [e.message.split(":")[0] for e in events if e.kind == "deployment-scaled"] == [
        "web scaled from 2 to 5 replica(s)",
        "web scaled from 5 to 1 replica(s)",
        "web scaled from 1 to 0 replica(s)",
        "web scaled from 0 to 3 replica(s)",
    ]


@pytest.mark.asyncio
async def test_scale_of_an_unknown_deployment_exits_19(
    simbed: SimBed, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _ozwald(simbed, "scale", "nothing", "2") == ExitCode.DEPLOYMENT_NOT_FOUND
    assert "no deployment named 'nothing'" in capsys.readouterr().err


@pytest.mark.asyncio
async def test_a_cordoned_host_gets_nothing_new_keeps_what_it_runs_and_uncordon_lets_it_back(
    simbed: SimBed, capsys: pytest.CaptureFixture[str]
) -> None:
    # One instance per host (spread): with an idle host cordoned, exactly one of
    # HOSTS instances finds no host; a cordoned busy host keeps its instance.
    await simbed.apply([cpu_deployment("web", 3)])
    await simbed.wait_all_running("web", 3)
    placements = await simbed.placements()
    busy = placements["web-0"]
    idle = sorted(set(await simbed.hosts()) - set(placements.values()))[0]
    containers = simbed.container_ids()

    for host_id in (busy, idle):
        assert await _ozwald(simbed, "cordon", host_id) == ExitCode.OK
        assert f"{host_id} is cordoned" in capsys.readouterr().out
    assert (await simbed.hosts())[busy].cordoned
    assert await _ozwald(simbed, "hosts") == ExitCode.OK
    assert capsys.readouterr().out.count("READY,cordoned") == 2

    await simbed.call(simbed.client.scale_deployment, "web", HOSTS)

    async def all_but_one_running() -> bool:
        found = await simbed.instances("web")
        running = [i for i in found if i.state == fleet_state_pb2.INSTANCE_STATE_RUNNING]
        return len(found) == HOSTS and len(running) == HOSTS - 1

    await simbed.wait_until(f"{HOSTS - 1} of {HOSTS} running", all_but_one_running, SLACK)
    found = {i.id: i for i in await simbed.instances("web")}
    [waiting] = [i for i in found.values() if not i.host_id]
    assert waiting.state == PENDING
    explained = await simbed.call(simbed.client.explain_deployment, "web")
    [why] = [e for e in explained.instances if e.instance == waiting.id]
    [unschedulable] = [r for r in why.rejections if r.filter == "unschedulable"]
    assert unschedulable.hosts == 2
    assert all("cordoned" in example for example in unschedulable.examples)
    assert idle not in {i.host_id for i in found.values()}
    # What ran on the cordoned busy host runs on, untouched, and nothing joined it.
    assert found["web-0"].host_id == busy
    assert simbed.container_ids()[(busy, "web-0")] == containers[(busy, "web-0")]
    assert [i for i, h in simbed.running_on_hosts().items() if busy in h] == ["web-0"]

    # The cordon is stored: a restarted orchestrator still places nothing new there.
    simbed.orchestrator.restart()
    await simbed.wait_until("the agents reconnected", lambda: _all_connected(simbed), SLACK)
    hosts = await simbed.hosts()
    assert hosts[busy].cordoned and hosts[idle].cordoned
    assert not {i.id: i for i in await simbed.instances("web")}[waiting.id].host_id

    assert await _ozwald(simbed, "uncordon", idle) == ExitCode.OK
    assert f"{idle} is uncordoned" in capsys.readouterr().out
    await simbed.wait_all_running("web", HOSTS)
    after = {i.id: i.host_id for i in await simbed.instances("web")}
    assert after[waiting.id] == idle
    assert len(set(after.values())) == HOSTS
    assert simbed.duplicates() == {}


async def _all_connected(bed: SimBed) -> bool:
    # Every host, not only those the store had: a host that joined just before the
    # orchestrator was killed may not have been written yet.
    hosts = await bed.hosts()
    return len(hosts) == HOSTS and all(h.connected for h in hosts.values())


@pytest.mark.asyncio
async def test_cordon_of_an_unknown_host_exits_21(
    simbed: SimBed, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _ozwald(simbed, "cordon", "sim-9999") == ExitCode.HOST_NOT_FOUND
    err = capsys.readouterr().err
    assert "no host 'sim-9999' in the fleet" in err
    assert "ozwald hosts" in err
