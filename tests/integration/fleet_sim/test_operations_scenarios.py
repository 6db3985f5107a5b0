"""Fleet operations under stress on the simulated testbed: the real orchestrator process,
twelve simulated hosts (conftest.py), several deployments.

Five scenarios: a drain under load, a rolling update whose new version never becomes
healthy (auto_revert), a host failing mid-rollout, the orchestrator SIGKILLed and
restarted mid-rollout, and a host cut off mid-rollout for less than the reschedule grace
(which must move nothing). Throughout each one a background watch (operations_watch.py)
samples the orchestrator's FleetService and the simulated agents every 150 ms and checks,
at every sample (operations_invariants.py says exactly what):

- no desired state lost: the expected deployments, replica counts and instance ids, and
  versions that never go down, also across an orchestrator restart;
- no duplicate instance: no instance READY on two hosts at once (the agents' word), and
  exactly one copy of each once the scenario has settled;
- availability never below the limit: at most max_parallel instances of a deployment not
  RUNNING (the orchestrator's word), and at least replicas - max_parallel READY (the
  agents' word), except for what a host failure itself took away, which a rollout or a
  drain must not add to.

Timings are short (heartbeat 0.5 s, TTL 2 s, grace 3 s; instances ready 0.2 s after they
start, healthy after 1 s), every wait is bounded, and each test prints what it measured.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Iterable

import pytest
from ozwald.orchestrator.v1 import deployment_pb2, fleet_state_pb2, rollout_pb2

from ozwald_sdk.errors import OzwaldError
from tests.integration.fleet_sim.conftest import SETTINGS
from tests.integration.fleet_sim.operations_invariants import Invariants, Watched
from tests.integration.fleet_sim.operations_watch import SimWatch
from tests.integration.fleet_sim.simbed import (
    HOST_DOWN,
    HOST_LOST,
    HOST_READY,
    RUNNING,
    SimBed,
    cpu_deployment,
    gpu_deployment,
)

pytestmark = pytest.mark.integration

R = rollout_pb2
OLD = "ozwald/sim:1"
NEW = "ozwald/sim:2"
BROKEN = "ozwald/sim:broken"
# Bounds on behaviour on a shared 2-core machine, not speed goals.
WAIT_S = 40.0
LOSS_S = SETTINGS.heartbeat_ttl_s + SETTINGS.reschedule_grace_s + 15.0
# How long a SIGKILLed orchestrator stays down before it is started again (systemd's
# RestartSec); the agents' reconnect backoff grows meanwhile.
RESTART_DELAY_S = 2.0


def _deployment(
    base: deployment_pb2.Deployment,
    *,
    image: str = OLD,
    max_parallel: int = 1,
    min_healthy_s: float = 1.0,
    healthy_deadline_s: float = 10.0,
    progress_deadline_s: float = 20.0,
    auto_revert: bool = False,
) -> deployment_pb2.Deployment:
    """`base` with its image and update strategy set."""
    deployment = deployment_pb2.Deployment()
    deployment.CopyFrom(base)
    for candidate in deployment.candidates:
        candidate.image = image
    update = deployment.update
    update.max_parallel = max_parallel
    update.min_healthy_time.FromMilliseconds(int(min_healthy_s * 1000))
    update.healthy_deadline.FromMilliseconds(int(healthy_deadline_s * 1000))
    update.progress_deadline.FromMilliseconds(int(progress_deadline_s * 1000))
    update.auto_revert = auto_revert
    return deployment


def _watched(deployments: Iterable[deployment_pb2.Deployment]) -> list[Watched]:
    return [Watched(d.name, d.replicas, d.update.max_parallel or 1) for d in deployments]


async def _rollout(bed: SimBed, name: str) -> R.Rollout:
    return await bed.call(bed.client.get_rollout, name)


async def _wait_rollout(
    bed: SimBed, name: str, state: R.RolloutState.ValueType, *, revert: bool, timeout: float
) -> R.Rollout:
    async def reached() -> bool:
        rollout = await _rollout(bed, name)
        return rollout.state == state and rollout.is_revert == revert

    await bed.wait_until(
        f"{name}'s {'revert ' if revert else ''}rollout {R.RolloutState.Name(state)}",
        reached,
        timeout,
    )
    return await _rollout(bed, name)


async def _versions(bed: SimBed) -> dict[str, tuple[int, int]]:
    """deployment -> (version, replicas), as stored."""
    listed = await bed.call(bed.client.list_deployments)
    return {d.name: (d.version, d.replicas) for d in listed.deployments}


def _images(bed: SimBed, deployment: str) -> dict[str, str]:
    """instance -> the image its host runs it from (copies that are stopping left out)."""
    prefix = f"{deployment}-"
    return {
        name: spec.image
        for agent in bed.fleet
        for name, spec in agent.runtime.specs().items()
        if name.startswith(prefix)
    }


async def _events(bed: SimBed, kind: str, deployment: str = "") -> list[str]:
    events = await bed.call(lambda: list(bed.client.watch_events(follow=False)))
    return [
        e.message
        for e in events
        if e.kind == kind and (not deployment or e.deployment == deployment)
    ]


async def _settled(bed: SimBed, deployments: Iterable[deployment_pb2.Deployment]) -> None:
    """Every instance RUNNING by the orchestrator's word, and exactly one copy of each on
    the hosts, on the host the orchestrator placed it."""
    wanted = {f"{d.name}-{n}" for d in deployments for n in range(d.replicas)}

    async def one_copy_each() -> bool:
        placed = {i.id: i for i in await bed.instances()}
        running = bed.running_on_hosts()
        return (
            set(placed) == wanted
            and all(i.state == RUNNING for i in placed.values())
            and set(running) == wanted
            and all(running[i] == [placed[i].host_id] for i in wanted)
        )

    await bed.wait_until(
        "one running copy of every instance, where it is placed", one_copy_each, WAIT_S
    )


class ApiLoad:
    """A few operators' clients asking the orchestrator questions in a loop (bounded by
    the block), each from a thread of its own: the load a drain must not disturb."""

    CLIENTS = 4
    PAUSE_S = 0.05

    def __init__(self, bed: SimBed) -> None:
        self.bed = bed
        self.requests = 0
        self.failed: list[str] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> ApiLoad:
        self._tasks = [asyncio.create_task(self._client(n)) for n in range(self.CLIENTS)]
        return self

    async def __aexit__(self, *_: object) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def _client(self, first: int) -> None:
        with self.bed.orchestrator.client(timeout=5.0) as client:
            calls: list[Callable[[], object]] = [
                client.list_instances,
                functools.partial(client.get_deployment, "web"),
                functools.partial(client.explain_deployment, "batch"),
                client.list_hosts,
            ]
            n = first
            while not self._stop.is_set():
                try:
                    await asyncio.to_thread(calls[n % len(calls)])
                    self.requests += 1
                except OzwaldError as e:
                    self.failed.append(str(e))
                n += 1
                await asyncio.sleep(self.PAUSE_S)


def _assert_held(invariants: Invariants) -> None:
    print(invariants.summary())
    assert invariants.violation_count == 0, invariants.report()
    assert invariants.orchestrator_samples >= 10, invariants.summary()


@pytest.mark.asyncio
async def test_a_drain_under_load_keeps_every_deployment_within_its_budget(simbed: SimBed) -> None:
    """Four deployments (three spread, one packed by binpack), then the busiest host is
    drained while (a) one of the deployments with an instance there rolls out a new
    version at the same time, sharing the disruption budget with the drain, and (b) four
    clients keep asking the orchestrator questions. The drain completes before its
    deadline, the host ends empty and cordoned, every instance runs elsewhere, and no
    deployment ever had more than its max_parallel instances down."""
    web = _deployment(cpu_deployment("web", 6), max_parallel=1)
    api = _deployment(cpu_deployment("api", 4), max_parallel=2)
    batch = _deployment(cpu_deployment("batch", 4, spread=False), max_parallel=1)
    llm = _deployment(gpu_deployment("llm", 2, vram_gib=20, model="H100"), max_parallel=1)
    fleet = [web, api, batch, llm]
    await simbed.apply(fleet)
    for d in fleet:
        await simbed.wait_all_running(d.name, d.replicas)
    placements = {i.id: i.host_id for i in await simbed.instances()}
    per_host: dict[str, list[str]] = {}
    for instance_id, host_id in sorted(placements.items()):
        per_host.setdefault(host_id, []).append(instance_id)
    # The busiest host that runs api: the drain and api's rollout then share a budget.
    busiest = max(
        (h for h, ids in per_host.items() if any(i.startswith("api-") for i in ids)),
        key=lambda h: (len(per_host[h]), h),
    )
    on_it = per_host[busiest]
    assert len(on_it) >= 3, f"the drained host runs too little to say much: {per_host}"
    versions_before = await _versions(simbed)

    invariants = Invariants(_watched(fleet))
    # Sampled every 50 ms: the simulated drain takes about a second.
    async with SimWatch(simbed, invariants, interval=0.05) as watch, ApiLoad(simbed) as load:
        started = time.monotonic()
        host = await simbed.call(simbed.client.drain_host, busiest, 30.0)
        assert host.cordoned and host.drain.state == fleet_state_pb2.DRAIN_STATE_RUNNING
        await simbed.apply([web, _deployment(api, image=NEW, max_parallel=2), batch, llm])
        watch.follow_rollout("api")

        async def drained() -> bool:
            drain = (await simbed.hosts())[busiest].drain
            return drain.state != fleet_state_pb2.DRAIN_STATE_RUNNING

        await simbed.wait_until(f"{busiest}'s drain ends", drained, WAIT_S)
        drained_s = time.monotonic() - started
        rollout = await _wait_rollout(
            simbed, "api", R.ROLLOUT_STATE_SUCCEEDED, revert=False, timeout=WAIT_S
        )
        await _settled(simbed, fleet)

    _assert_held(invariants)
    host = (await simbed.hosts())[busiest]
    assert host.drain.state == fleet_state_pb2.DRAIN_STATE_COMPLETE, host.drain
    assert host.cordoned and host.drain.remaining == 0
    assert simbed.fleet[busiest].runtime.names() == []
    after = {i.id: i for i in await simbed.instances()}
    assert all(after[i].host_id not in ("", busiest) for i in on_it)
    for d in (web, api):
        hosts = [i.host_id for i in after.values() if i.deployment == d.name]
        assert len(set(hosts)) == d.replicas, f"{d.name} still spread: {hosts}"
    # Desired state: only api has a new version (the rollout); a drain stores none.
    versions_before["api"] = (2, api.replicas)
    assert await _versions(simbed) == versions_before
    assert (rollout.from_version, rollout.to_version, rollout.updated) == (1, 2, api.replicas)
    assert set(_images(simbed, "api").values()) == {NEW}
    # The drain moved everything there, except what api's rollout replaced off the
    # cordoned host first (a replacement that no longer fits its host is placed again).
    progress = await _events(simbed, "drain-progress")
    moved = {m.split()[1] for m in progress if f" off {busiest} " in m}
    assert {i for i in on_it if not i.startswith("api-")} <= moved, (moved, on_it)
    assert not load.failed, load.failed[:5]
    assert load.requests >= 20, load.requests
    print(
        f"drained {busiest} ({len(on_it)} instances: {', '.join(on_it)}) in {drained_s:.1f} s "
        f"with api rolling out meanwhile; {load.requests} requests from "
        f"{ApiLoad.CLIENTS} clients, none failed"
    )


@pytest.mark.asyncio
async def test_a_version_that_never_becomes_healthy_is_reverted_within_max_parallel(
    simbed: SimBed,
) -> None:
    """web (6 replicas, max_parallel 2, auto_revert) rolls out an image whose containers
    crash at every start on every host. The rollout fails at its progress deadline and is
    REVERTED; the revert (a new version with version 1's spec) SUCCEEDS. At no sample do
    more than max_parallel instances carry the broken version or stand down; the
    instances never replaced keep their containers; a bystander deployment is untouched."""
    for agent in simbed.fleet:
        agent.runtime.crash_loop_image(BROKEN)
    strategy = {
        "max_parallel": 2,
        "min_healthy_s": 1.0,
        "healthy_deadline_s": 2.0,
        "progress_deadline_s": 3.0,
        "auto_revert": True,
    }
    web = _deployment(cpu_deployment("web", 6), **strategy)  # type: ignore[arg-type]
    api = _deployment(cpu_deployment("api", 3))
    await simbed.apply([web, api])
    await simbed.wait_all_running("web", 6)
    await simbed.wait_all_running("api", 3)
    containers = simbed.container_ids()

    invariants = Invariants(_watched([web, api]))
    async with SimWatch(simbed, invariants) as watch:
        started = time.monotonic()
        await simbed.apply([_deployment(web, image=BROKEN, **strategy), api])  # type: ignore[arg-type]
        watch.follow_rollout("web")
        revert = await _wait_rollout(
            simbed, "web", R.ROLLOUT_STATE_SUCCEEDED, revert=True, timeout=WAIT_S
        )
        reverted_s = time.monotonic() - started
        await _settled(simbed, [web, api])

    _assert_held(invariants)
    assert invariants.max_on_version[("web", 2)] <= 2, invariants.max_on_version
    assert invariants.rollout_states["web"][0] == (1, "ROLLOUT_STATE_RUNNING")
    # GetRollout shows the current rollout: the revert replaces rollout 1 at once, so
    # rollout 1's end is read from the events.
    assert {r for r, _ in invariants.rollout_states["web"]} == {1, 2}
    assert invariants.rollout_states["web"][-1] == (2, "ROLLOUT_STATE_SUCCEEDED")
    assert (revert.id, revert.from_version, revert.to_version) == (2, 2, 3)
    assert await _versions(simbed) == {"web": (3, 6), "api": (1, 3)}
    stored = await simbed.call(simbed.client.get_deployment, "web")
    assert [c.image for c in stored.deployment.candidates] == [OLD]
    assert {i.deployment_version for i in stored.instances} == {3}
    assert _images(simbed, "web") == {f"web-{n}": OLD for n in range(6)}
    # Only the instances the broken version reached got new containers.
    after = simbed.container_ids()
    touched = sorted(
        name for (host, name), cid in containers.items() if after.get((host, name)) != cid
    )
    assert len(touched) <= 2 and all(t.startswith("web-") for t in touched), touched
    [failed] = await _events(simbed, "rollout-failed", "web")
    assert failed.startswith("rollout 1 failed: no instance became healthy"), failed
    [reverted] = await _events(simbed, "rollout-reverted", "web")
    assert "reverted to version 1's spec as version 3" in reverted
    print(f"broken rollout reverted and the revert done in {reverted_s:.1f} s; replaced {touched}")


@pytest.mark.asyncio
async def test_a_host_failing_mid_rollout_neither_fails_the_rollout_nor_adds_to_the_loss(
    simbed: SimBed,
) -> None:
    """web (6 replicas, spread, max_parallel 1, auto_revert) rolls out a new image; once
    one new instance is healthy, the host of an old-version instance that is RUNNING dies
    (agent and containers). Availability: the instances on that host are set aside from
    the moment it dies; of the others, never more than max_parallel are down (the rollout
    does not replace more while the lost one is down), so in all never more than
    max_parallel + what the host took. The lost instance comes up on another host with
    the new version at once; the rollout SUCCEEDS (no revert); the bystanders on other
    hosts are untouched. The host then comes back and stops what moved away."""
    web = _deployment(cpu_deployment("web", 6), max_parallel=1, auto_revert=True)
    api = _deployment(cpu_deployment("api", 3))
    llm = _deployment(gpu_deployment("llm", 2, vram_gib=20, model="H100"))
    fleet = [web, api, llm]
    await simbed.apply(fleet)
    for d in fleet:
        await simbed.wait_all_running(d.name, d.replicas)

    invariants = Invariants(_watched(fleet))
    async with SimWatch(simbed, invariants) as watch:
        await simbed.apply(
            [_deployment(web, image=NEW, max_parallel=1, auto_revert=True), api, llm]
        )
        watch.follow_rollout("web")

        async def one_healthy() -> bool:
            return (await _rollout(simbed, "web")).healthy >= 1

        await simbed.wait_until("one web instance healthy on version 2", one_healthy, WAIT_S)
        instances = await simbed.instances()
        old_running = [
            i
            for i in instances
            if i.deployment == "web" and i.deployment_version == 1 and i.state == RUNNING
        ]
        assert old_running, "the rollout ended before a host could fail mid-way"
        victim = old_running[-1].host_id
        lost = [i for i in instances if i.host_id == victim]
        for d in fleet:
            invariants.took(d.name, [i.id for i in lost if i.deployment == d.name])
        failed_at = time.monotonic()
        await simbed.fleet[victim].stop(power_off=True)

        await simbed.wait_host_state(victim, HOST_DOWN, LOSS_S)
        await simbed.wait_host_state(victim, HOST_LOST, LOSS_S)
        rollout = await _wait_rollout(
            simbed, "web", R.ROLLOUT_STATE_SUCCEEDED, revert=False, timeout=WAIT_S
        )
        recovered_s = time.monotonic() - failed_at
        await _settled(simbed, fleet)

    _assert_held(invariants)
    assert [r for r, _ in invariants.rollout_states["web"]] == [1] * len(
        invariants.rollout_states["web"]
    ), invariants.rollout_states["web"]
    assert (rollout.from_version, rollout.to_version, rollout.healthy) == (1, 2, 6)
    assert await _versions(simbed) == {"web": (2, 6), "api": (1, 3), "llm": (1, 2)}
    after = {i.id: i for i in await simbed.instances()}
    # Every lost instance leaves the dead host by rescheduling once the host is LOST (a
    # rollout never moves an instance off a host that is only DOWN: see the partition
    # test below); the lost web instance is placed with the new version.
    for instance in lost:
        moved = after[instance.id]
        assert moved.host_id not in ("", victim), moved
        if instance.deployment != "web":
            assert moved.reschedules >= 1, moved
    how = await _events(simbed, "rollout-progress", "web")
    assert {i.deployment_version for i in after.values() if i.deployment == "web"} == {2}
    assert _images(simbed, "web") == {f"web-{n}": NEW for n in range(6)}
    assert len({i.host_id for i in after.values() if i.deployment == "web"}) == 6
    assert await _events(simbed, "rollout-reverted", "web") == []

    # The machine returns: it restarts what it ran, is told it runs none of it, stops it.
    simbed.fleet[victim].start()
    await simbed.wait_host_state(victim, HOST_READY, WAIT_S)

    async def victim_empty() -> bool:
        return simbed.fleet[victim].runtime.names() == []

    await simbed.wait_until(f"{victim} stops what moved away", victim_empty, WAIT_S)
    await _settled(simbed, fleet)
    assert {i.id: i.host_id for i in await simbed.instances()} == {
        i: a.host_id for i, a in after.items()
    }
    replaced = [m for m in how if m.startswith("replacing") and any(i.id in m for i in lost)]
    print(
        f"{victim} failed with {[i.id for i in lost]}; rollout succeeded "
        f"{recovered_s:.1f} s later; the rollout replaced off the dead host: {replaced}"
    )


@pytest.mark.asyncio
async def test_an_orchestrator_sigkilled_mid_rollout_continues_it_after_restart(
    simbed: SimBed,
) -> None:
    """web (6 replicas, spread, max_parallel 2) rolls out a new image; once one new
    instance is healthy the orchestrator is SIGKILLed and, as a supervisor would, started
    again on the same store RESTART_DELAY_S later; the agents, redialling with their
    backoff meanwhile, find it again over the next seconds. The watch keeps sampling the
    agents during the outage, and the orchestrator again as soon as it answers: the
    availability and duplicate invariants hold across the restart too. After the restart the same
    rollout (same id, one rollout-started event) continues and SUCCEEDS; the stored
    versions are those before the kill; instances that were already replaced and healthy
    are not replaced again; the bystanders are untouched."""
    web = _deployment(cpu_deployment("web", 6), max_parallel=2, min_healthy_s=1.5)
    api = _deployment(cpu_deployment("api", 3))
    llm = _deployment(gpu_deployment("llm", 2, vram_gib=20, model="H100"))
    fleet = [web, api, llm]
    await simbed.apply(fleet)
    for d in fleet:
        await simbed.wait_all_running(d.name, d.replicas)
    bystanders = {k: v for k, v in simbed.container_ids().items() if not k[1].startswith("web-")}

    invariants = Invariants(_watched(fleet))
    async with SimWatch(simbed, invariants) as watch:
        await simbed.apply(
            [_deployment(web, image=NEW, max_parallel=2, min_healthy_s=1.5), api, llm]
        )
        watch.follow_rollout("web")

        async def mid_way() -> bool:
            rollout = await _rollout(simbed, "web")
            return rollout.healthy >= 1 and rollout.state == R.ROLLOUT_STATE_RUNNING

        await simbed.wait_until("web mid-rollout with one instance healthy", mid_way, WAIT_S)
        before = await _rollout(simbed, "web")
        versions = await _versions(simbed)
        healthy_before = {
            i.id: i.agent_status.container_id
            for i in await simbed.instances("web")
            if i.deployment_version == 2 and i.state == RUNNING
        }
        killed_at = time.monotonic()
        simbed.orchestrator.kill()
        await asyncio.sleep(RESTART_DELAY_S)
        await asyncio.to_thread(simbed.orchestrator.start)
        back_s = time.monotonic() - killed_at
        await simbed.fleet.wait_connected(WAIT_S)
        after = await _wait_rollout(
            simbed, "web", R.ROLLOUT_STATE_SUCCEEDED, revert=False, timeout=WAIT_S
        )
        finished_s = time.monotonic() - killed_at
        await _settled(simbed, fleet)

    _assert_held(invariants)
    assert invariants.outages >= 1, "the watch never saw the orchestrator down"
    assert before.state == R.ROLLOUT_STATE_RUNNING and before.updated < 6
    assert after.id == before.id == 1 and (after.from_version, after.to_version) == (1, 2)
    assert len(await _events(simbed, "rollout-started", "web")) == 1
    assert await _versions(simbed) == versions == {"web": (2, 6), "api": (1, 3), "llm": (1, 2)}
    assert _images(simbed, "web") == {f"web-{n}": NEW for n in range(6)}
    now = {i.id: i.agent_status.container_id for i in await simbed.instances("web")}
    assert {i: now[i] for i in healthy_before} == healthy_before, "replaced again"
    current = simbed.container_ids()
    assert {k: current.get(k) for k in bystanders} == bystanders, "a bystander was restarted"
    print(
        f"orchestrator back {back_s:.1f} s after SIGKILL (updated {before.updated}/6 then); "
        f"rollout done {finished_s:.1f} s after the kill"
    )


@pytest.mark.asyncio
async def test_a_partition_shorter_than_the_grace_mid_rollout_moves_nothing(simbed: SimBed) -> None:
    """web (4 replicas, spread, max_parallel 1) rolls out a new image; once one new
    instance is healthy, the host of an old-version instance that is RUNNING is cut off
    (the link drops everything; the agent and its containers live on) and healed before
    the reschedule grace ends. A host that comes back within the grace moves nothing: its
    instance stays where it is (the rollout waits, its budget spent on the instance that
    is unreachable) and is replaced in place once the host is back. The cut-off host
    never stops serving its copy, so an instance moved meanwhile would run twice: the
    watch fails on any instance READY on two hosts at once."""
    web = _deployment(cpu_deployment("web", 4), max_parallel=1, progress_deadline_s=30.0)
    await simbed.apply([web])
    await simbed.wait_all_running("web", 4)

    invariants = Invariants(_watched([web]))
    async with SimWatch(simbed, invariants) as watch:
        await simbed.apply([_deployment(web, image=NEW, max_parallel=1, progress_deadline_s=30.0)])
        watch.follow_rollout("web")

        async def one_healthy() -> bool:
            return (await _rollout(simbed, "web")).healthy >= 1

        await simbed.wait_until("one web instance healthy on version 2", one_healthy, WAIT_S)
        old_running = [
            i
            for i in await simbed.instances("web")
            if i.deployment_version == 1 and i.state == RUNNING
        ]
        assert old_running, "the rollout ended before a host could be cut off mid-way"
        cut = old_running[-1]
        # Set aside like a failure's loss: the orchestrator cannot see it while the link
        # is down, though by its agent's word it keeps running throughout.
        invariants.took("web", [cut.id])
        simbed.fleet[cut.host_id].partition()
        cut_at = time.monotonic()
        await simbed.wait_host_state(cut.host_id, HOST_DOWN, LOSS_S)
        # Heal well inside the grace: DOWN for about a third of it.
        await asyncio.sleep(SETTINGS.reschedule_grace_s / 3)
        during = {i.id: i for i in await simbed.instances("web")}
        simbed.fleet[cut.host_id].heal()
        healed_s = time.monotonic() - cut_at
        await simbed.wait_host_state(cut.host_id, HOST_READY, WAIT_S)
        await _wait_rollout(simbed, "web", R.ROLLOUT_STATE_SUCCEEDED, revert=False, timeout=WAIT_S)
        await _settled(simbed, [web])

    assert during[cut.id].host_id == cut.host_id, (
        f"{cut.id} was moved off {cut.host_id} while that host was DOWN within its grace "
        f"(now on {during[cut.id].host_id or 'no host'}: {during[cut.id].reason}); the "
        "cut-off host still ran its copy"
    )
    _assert_held(invariants)
    after = {i.id: i for i in await simbed.instances("web")}
    assert after[cut.id].host_id == cut.host_id and after[cut.id].reschedules == 0
    assert _images(simbed, "web") == {f"web-{n}": NEW for n in range(4)}
    print(f"{cut.host_id} cut off for {healed_s:.1f} s mid-rollout; {cut.id} stayed")
