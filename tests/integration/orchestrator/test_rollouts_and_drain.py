"""Rolling updates and drains against the real orchestrator process, with three simulated
agents on the real link protocol; the operator's side is the FleetClient and the `ozwald`
CLI over the orchestrator's unix socket.

Timings are short (instances are ready 0.2 s after they start, healthy after 1 s) and
every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from ozwald.orchestrator.v1 import deployment_pb2, fleet_state_pb2, rollout_pb2

from ozwald_sdk.cli.main import main
from ozwald_sdk.errors import ExitCode
from ozwald_testbed.sim_orchestrator import OrchestratorProcess, OrchestratorSettings
from ozwald_testbed.sim_pki import FleetPki
from ozwald_testbed.simulated_fleet import SimulatedFleet, hosts_from_fixtures
from ozwald_testbed.simulated_runtime import RuntimeTiming
from tests.integration.fleet_sim.conftest import FIXTURES
from tests.integration.fleet_sim.simbed import RUNNING, SimBed, cpu_deployment
from tests.support.short_paths import short_tmpdir

pytestmark = pytest.mark.integration

SETTINGS = OrchestratorSettings(
    heartbeat_interval_s=0.5, heartbeat_ttl_s=3.0, reschedule_grace_s=5.0
)
TIMING = RuntimeTiming(ready_after_s=0.2, restart_after_s=0.2, stop_after_s=0.1)
BROKEN = "ozwald/sim:broken"
R = rollout_pb2
FS = fleet_state_pb2
WAIT_S = 40.0


@pytest.fixture(scope="module")
def pki() -> Iterator[FleetPki]:
    with short_tmpdir() as path:
        yield FleetPki(path / "pki")


@pytest_asyncio.fixture
async def bed(pki: FleetPki) -> AsyncIterator[SimBed]:
    """The orchestrator and three CPU hosts (sim-0000 .. sim-0002, zones 0 .. 2)."""
    with short_tmpdir() as work:
        orchestrator = OrchestratorProcess(work, pki, SETTINGS)
        orchestrator.start()
        fleet = SimulatedFleet(orchestrator.target, pki, timing=TIMING)
        fleet.add_all(hosts_from_fixtures(FIXTURES, 3, names=("cpu_only",)))
        client = orchestrator.client()
        simbed = SimBed(orchestrator, fleet, client, work)
        try:
            await fleet.start()
            await fleet.wait_connected(20)
            yield simbed
        finally:
            await fleet.stop()
            client.close()
            orchestrator.stop()


def web(
    replicas: int = 3,
    *,
    image: str = "ozwald/sim:1",
    spread: bool = False,
    labels: dict[str, str] | None = None,
    max_parallel: int = 1,
    min_healthy_s: float = 1.0,
    healthy_deadline_s: float = 4.0,
    progress_deadline_s: float = 6.0,
    auto_revert: bool = False,
    canaries: int = 0,
) -> deployment_pb2.Deployment:
    deployment = cpu_deployment("web", replicas, spread=spread, labels=labels)
    deployment.candidates[0].image = image
    update = deployment.update
    update.max_parallel = max_parallel
    update.min_healthy_time.FromMilliseconds(int(min_healthy_s * 1000))
    update.healthy_deadline.FromMilliseconds(int(healthy_deadline_s * 1000))
    update.progress_deadline.FromMilliseconds(int(progress_deadline_s * 1000))
    update.auto_revert = auto_revert
    update.canaries = canaries
    return deployment


async def _cli(bed: SimBed, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(
        main, [*argv, "--orchestrator", bed.orchestrator.socket_target, "--timeout", "10"]
    )
    return code, capsys.readouterr().out


async def _rollout(bed: SimBed) -> R.Rollout:
    return await bed.call(bed.client.get_rollout, "web")


async def _rolled_out(
    bed: SimBed, *, max_unavailable: int, revert: bool = False, timeout: float = WAIT_S
) -> R.Rollout:
    """Waits for the (revert) rollout to succeed; on the way, no sample ever shows more
    than `max_unavailable` instances of web not RUNNING."""
    worst = 0

    async def done() -> bool:
        nonlocal worst
        instances = await bed.instances("web")
        worst = max(worst, sum(1 for i in instances if i.state != RUNNING))
        rollout = await _rollout(bed)
        return rollout.state == R.ROLLOUT_STATE_SUCCEEDED and rollout.is_revert == revert

    await bed.wait_until("the rollout of web succeeded", done, timeout)
    assert worst <= max_unavailable
    return await _rollout(bed)


def _images(bed: SimBed) -> dict[str, str]:
    """What the simulated runtimes run: instance -> image."""
    return {name: spec.image for agent in bed.fleet for name, spec in agent.runtime.specs().items()}


async def _events(bed: SimBed, kind: str) -> list[str]:
    events = await bed.call(lambda: list(bed.client.watch_events(follow=False)))
    return [e.message for e in events if e.kind == kind]


@pytest.mark.asyncio
async def test_a_changed_image_rolls_out_within_max_parallel(
    bed: SimBed, capsys: pytest.CaptureFixture[str]
) -> None:
    await bed.apply([web()])
    await bed.wait_all_running("web", 3)
    await bed.apply([web(image="ozwald/sim:2")])

    rollout = await _rolled_out(bed, max_unavailable=1)

    assert (rollout.from_version, rollout.to_version) == (1, 2)
    assert (rollout.desired, rollout.updated, rollout.healthy) == (3, 3, 3)
    assert {i.deployment_version for i in await bed.instances("web")} == {2}
    assert _images(bed) == {f"web-{n}": "ozwald/sim:2" for n in range(3)}
    assert bed.duplicates() == {}
    code, out = await _cli(bed, capsys, "rollout", "status", "web")
    assert code == ExitCode.OK
    assert "version 1 -> 2: succeeded" in out and "updated 3/3, healthy 3/3" in out
    code, out = await _cli(bed, capsys, "rollout", "status", "web", "--json")
    assert json.loads(out)["state"] == "ROLLOUT_STATE_SUCCEEDED"


@pytest.mark.asyncio
async def test_a_version_that_fails_health_is_reverted(bed: SimBed) -> None:
    for agent in bed.fleet:
        agent.runtime.crash_loop_image(BROKEN)
    await bed.apply([web(auto_revert=True)])
    await bed.wait_all_running("web", 3)
    await bed.apply([web(image=BROKEN, auto_revert=True)])

    revert = await _rolled_out(bed, max_unavailable=1, revert=True)

    assert revert.from_version == 2 and revert.to_version == 3
    assert _images(bed) == {f"web-{n}": "ozwald/sim:1" for n in range(3)}
    assert {i.deployment_version for i in await bed.instances("web")} == {3}
    [reverted] = await _events(bed, "rollout-reverted")
    assert "reverted to version 1's spec as version 3" in reverted


@pytest.mark.asyncio
async def test_pause_holds_a_rollout_and_resume_finishes_it(
    bed: SimBed, capsys: pytest.CaptureFixture[str]
) -> None:
    await bed.apply([web(min_healthy_s=1.5)])
    await bed.wait_all_running("web", 3)
    await bed.apply([web(image="ozwald/sim:2", min_healthy_s=1.5)])
    code, out = await _cli(bed, capsys, "rollout", "pause", "web")
    assert code == ExitCode.OK and "Paused the rollout of web" in out

    await asyncio.sleep(3.0)
    versions = sorted(i.deployment_version for i in await bed.instances("web"))
    assert versions == [1, 1, 2]
    assert (await _rollout(bed)).state == R.ROLLOUT_STATE_PAUSED

    code, out = await _cli(bed, capsys, "rollout", "resume", "web")
    assert code == ExitCode.OK and "Resumed" in out
    await _rolled_out(bed, max_unavailable=1)
    code, _ = await _cli(bed, capsys, "rollout", "resume", "web")
    assert code == ExitCode.ROLLOUT_NOT_ACTIVE


@pytest.mark.asyncio
async def test_a_canary_waits_for_promote(bed: SimBed, capsys: pytest.CaptureFixture[str]) -> None:
    await bed.apply([web(4, canaries=1)])
    await bed.wait_all_running("web", 4)
    await bed.apply([web(4, image="ozwald/sim:2", canaries=1)])

    async def waiting() -> bool:
        return (await _rollout(bed)).state == R.ROLLOUT_STATE_AWAITING_PROMOTION

    await bed.wait_until("the canary is healthy", waiting, WAIT_S)
    assert sorted(i.deployment_version for i in await bed.instances("web")) == [1, 1, 1, 2]
    code, out = await _cli(bed, capsys, "rollout", "promote", "web", "--json")
    assert code == ExitCode.OK and json.loads(out)["promoted"] is True
    await _rolled_out(bed, max_unavailable=1)
    assert _images(bed) == {f"web-{n}": "ozwald/sim:2" for n in range(4)}


@pytest.mark.asyncio
async def test_a_drain_empties_the_host_and_leaves_it_cordoned(
    bed: SimBed, capsys: pytest.CaptureFixture[str]
) -> None:
    # Binpack puts all three on one host.
    await bed.apply([web(3)])
    await bed.wait_all_running("web", 3)
    [busy] = {i.host_id for i in await bed.instances("web")}

    code, out = await _cli(bed, capsys, "drain", busy, "--deadline", "60s", "--wait", "--json")

    assert code == ExitCode.OK
    host = json.loads(out)
    assert host["cordoned"] is True
    assert host["drain"]["state"] == "DRAIN_STATE_COMPLETE"
    await bed.wait_all_running("web", 3)
    instances = await bed.instances("web")
    assert all(i.host_id and i.host_id != busy for i in instances)
    assert bed.fleet[busy].runtime.specs() == {}
    assert bed.duplicates() == {}
    progress = await _events(bed, "drain-progress")
    assert len(progress) == 3
    assert (await bed.hosts())[busy].drain.remaining == 0


@pytest.mark.asyncio
async def test_a_drain_deadline_moves_what_cannot_go(
    bed: SimBed, capsys: pytest.CaptureFixture[str]
) -> None:
    # Only sim-0000 is in zone-0: nothing else can take these instances.
    await bed.apply([web(2, labels={"zone": "zone-0"})])
    await bed.wait_all_running("web", 2)

    code, out = await _cli(bed, capsys, "drain", "sim-0000", "--deadline", "2s", "--wait")

    assert code == ExitCode.OK
    assert "the deadline passed" in out
    host = (await bed.hosts())["sim-0000"]
    assert host.drain.state == FS.DRAIN_STATE_DEADLINE_PASSED and host.cordoned
    instances = await bed.instances("web")
    assert [i.state for i in instances] == [FS.INSTANCE_STATE_PENDING] * 2
    assert "cannot be placed" in instances[0].reason
    assert len(await _events(bed, "drain-deadline")) == 1


@pytest.mark.asyncio
async def test_an_orchestrator_restarted_mid_rollout_continues_it(bed: SimBed) -> None:
    await bed.apply([web(4, min_healthy_s=1.5)])
    await bed.wait_all_running("web", 4)
    await bed.apply([web(4, image="ozwald/sim:2", min_healthy_s=1.5)])

    async def halfway() -> bool:
        return (await _rollout(bed)).healthy >= 1

    await bed.wait_until("one instance healthy on version 2", halfway, WAIT_S)
    before = await _rollout(bed)
    await asyncio.to_thread(bed.orchestrator.restart)
    await bed.fleet.wait_connected(20)

    after = await _rolled_out(bed, max_unavailable=1)
    assert after.id == before.id == 1
    assert _images(bed) == {f"web-{n}": "ozwald/sim:2" for n in range(4)}
    assert bed.duplicates() == {}
    assert len(await _events(bed, "rollout-started")) == 1
