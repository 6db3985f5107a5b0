"""Fleet operations under stress on the real testbed: a real orchestrator and three real
agents, each in a network namespace of its own, sharing the Docker Engine
(ozwald_testbed.real_fleet), on names of their own (subnet, prefix, bridge, port) so that
another testbed running beside them is untouched.

Four scenarios: a drain under load, a rolling update whose new version never passes its
health check (auto_revert), a host failing mid-rollout (its agent SIGKILLed and its
containers killed), and the orchestrator SIGKILLed and restarted mid-rollout. Throughout
each one a background thread (operations_watch.py) samples, every 150 ms, the
orchestrator's FleetService, each agent's own ListServices and the engine's containers,
and checks at every sample (tests/integration/fleet_sim/operations_invariants.py says
exactly what):

- no desired state lost: the expected deployments, replica counts and instance ids, and
  versions that never go down, also across an orchestrator restart;
- no duplicate instance: no instance READY on two hosts at once by the agents' word; once
  the scenario has settled, exactly one running container of each instance, on the host
  the orchestrator placed it (while a move is under way an old container may still be
  stopping as the new one starts: that is counted and printed, not failed);
- availability never below the limit: at most max_parallel instances of a deployment not
  RUNNING (the orchestrator's word), at least replicas - max_parallel READY (the agents'
  word), except for what a host failure itself took away, which the rollout must not
  add to.

Health checks are commands run inside the containers: an agent in a namespace cannot
reach the engine's bridge networks over HTTP (docs/orchestrator.md, Limits). Timings
(conftest.TIMINGS): heartbeats every 0.5 s, a host is DOWN after 2 s of silence and LOST
5 s later.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import docker
import pytest
from ozwald.orchestrator.v1 import fleet_state_pb2, rollout_pb2

from ozwald_sdk.config import load_config
from ozwald_sdk.config.deployments import resolve_deployments
from ozwald_testbed.real_fleet import SERVICE_LABEL, RealFleet, TestbedSettings, running_fleet
from tests.integration.fleet_real.conftest import TIMINGS
from tests.integration.fleet_real.operations_watch import RealWatch
from tests.integration.fleet_sim.operations_invariants import Invariants, Watched

pytestmark = pytest.mark.integration

T = TypeVar("T")
R = rollout_pb2
FS = fleet_state_pb2
RUNNING = FS.INSTANCE_STATE_RUNNING
HEALTHY = '[wget, -q, -O, /dev/null, "http://127.0.0.1:8080/healthz"]'
NEVER_HEALTHY = '[sh, -c, "exit 1"]'
WAIT_S = 60.0
LOSS_S = TIMINGS.heartbeat_ttl + TIMINGS.reschedule_grace + 15.0
# How long a SIGKILLed orchestrator stays down before it is started again (systemd's
# RestartSec); the agents' reconnect backoff grows meanwhile.
RESTART_DELAY_S = 2.0


@pytest.fixture
def ops_fleet(tiny_image: None, workdir: Path, realm: str) -> Iterator[RealFleet]:
    """Three hosts on names no other test uses. Asks for `realm` so the realm's cleanup
    runs after the agents stopped (a running agent would start again what it removes)."""
    settings = TestbedSettings(
        workdir=workdir,
        hosts=3,
        subnet="10.221.0.0/24",
        prefix="ozop-h",
        bridge="ozop-br0",
        port=7461,
        timings=TIMINGS,
    )
    with running_fleet(settings) as fleet:
        try:
            yield fleet
        finally:
            # pytest shows this only for a test that failed: the logs are the finding.
            for log in sorted((fleet.workdir / "logs").glob("*.log")):
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-60:])
                print(f"----- {log.name} (last 60 lines)\n{tail}")


@dataclass(frozen=True)
class Spec:
    """One deployment of the tiny image as the fleet section declares it."""

    name: str
    replicas: int
    spread: bool = True
    release: str = "1"
    health: str = HEALTHY
    max_parallel: int = 1
    min_healthy: str = "1s"
    healthy_deadline: str = "15s"
    progress_deadline: str = "30s"
    auto_revert: bool = False

    def watched(self) -> Watched:
        return Watched(self.name, self.replicas, self.max_parallel)


def write_config(directory: Path, realm: str, specs: list[Spec], tag: str) -> Path:
    """An ozwald.yml with one service and one fleet deployment per spec."""
    services = "".join(
        f"""      {s.name}:
        image: ozwald/tiny:local
        connector_port: 8080
        environment: {{RELEASE: "{s.release}"}}
        health_check:
          command: {s.health}
          interval: 1s
          timeout: 1s
          retries: 2
        resources: {{memory: 32MiB, cpus: 0.1}}
"""
        for s in specs
    )
    deployments = "".join(
        f"""    {s.name}:
      service: {s.name}
      realm: {realm}
      variety: any
      replicas: {s.replicas}
      constraints: {{spread: {str(s.spread).lower()}}}
      update:
        max_parallel: {s.max_parallel}
        min_healthy_time: {s.min_healthy}
        healthy_deadline: {s.healthy_deadline}
        progress_deadline: {s.progress_deadline}
        auto_revert: {str(s.auto_revert).lower()}
"""
        for s in specs
    )
    path = directory / f"{realm}-{tag}.yml"
    path.write_text(
        f"version: 1\nrealms:\n  {realm}:\n    services:\n{services}fleet:\n"
        f"  deployments:\n{deployments}"
    )
    return path


def apply(fleet: RealFleet, config: Path) -> None:
    with fleet.client() as client:
        client.apply_deployments(resolve_deployments(load_config(config)))


def instances(fleet: RealFleet) -> dict[str, FS.Instance]:
    with fleet.client() as client:
        return {i.id: i for i in client.list_instances()}


def rollout(fleet: RealFleet, name: str) -> R.Rollout:
    with fleet.client() as client:
        return client.get_rollout(name)


def versions(fleet: RealFleet) -> dict[str, tuple[int, int]]:
    """deployment -> (version, replicas), as stored."""
    with fleet.client() as client:
        return {d.name: (d.version, d.replicas) for d in client.list_deployments().deployments}


def events(fleet: RealFleet, kind: str) -> list[str]:
    with fleet.client() as client:
        return [e.message for e in client.watch_events(follow=False) if e.kind == kind]


def wait_until(
    what: str, check: Callable[[], T | None], timeout: float, detail: Callable[[], str]
) -> T:
    """`check()` until it returns something other than None or False."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found is not None and found is not False:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}; {detail()}")
        time.sleep(0.2)


def describe(fleet: RealFleet, realm: str) -> str:
    rows = [
        f"{i.id} v{i.deployment_version} {FS.InstanceState.Name(i.state)} on "
        f"{i.host_id or '-'} ({i.reason})"
        for i in instances(fleet).values()
    ]
    hosts = [f"{h.id}={FS.HostState.Name(h.state)}" for h in fleet.hosts().values()]
    return f"instances {rows}; hosts {hosts}; engine runs {fleet.running_services(realm)}"


def settled(fleet: RealFleet, realm: str, specs: list[Spec]) -> dict[str, list[str]]:
    """Waits until every instance is RUNNING and the engine runs exactly one container of
    each, on the host it is placed on, and nothing else; returns host -> instance ids."""
    wanted = {f"{s.name}-{n}" for s in specs for n in range(s.replicas)}

    def check() -> dict[str, list[str]] | None:
        found = instances(fleet)
        if set(found) != wanted or any(i.state != RUNNING for i in found.values()):
            return None
        placed: dict[str, list[str]] = {host.name: [] for host in fleet.network.hosts}
        for instance in found.values():
            placed[instance.host_id].append(instance.id)
        placed = {host: sorted(ids) for host, ids in placed.items()}
        return placed if fleet.running_services(realm) == placed else None

    return wait_until(
        "one running container of every instance, where it is placed",
        check,
        WAIT_S,
        lambda: describe(fleet, realm),
    )


def containers(fleet: RealFleet, realm: str) -> dict[str, str]:
    """instance id -> its running container's id; fails if one runs twice."""
    found: dict[str, str] = {}
    for host in fleet.network.hosts:
        for container in fleet.host_containers(host, realm=realm, running_only=True):
            service = str(container.labels.get(SERVICE_LABEL, ""))
            assert service not in found, f"{service} runs twice: {describe(fleet, realm)}"
            found[service] = str(container.id)
    return found


def wait_rollout(
    fleet: RealFleet, realm: str, name: str, *, revert: bool, timeout: float = WAIT_S
) -> R.Rollout:
    def check() -> R.Rollout | None:
        current = rollout(fleet, name)
        done = current.state == R.ROLLOUT_STATE_SUCCEEDED and current.is_revert == revert
        return current if done else None

    return wait_until(
        f"{name}'s {'revert ' if revert else ''}rollout to succeed",
        check,
        timeout,
        lambda: f"{rollout(fleet, name)}; {describe(fleet, realm)}",
    )


def assert_held(invariants: Invariants) -> None:
    print(invariants.summary())
    copies = {i: n for i, n in invariants.max_copies.items() if n > 1}
    print(f"instances seen with two running containers at once (during moves): {copies or 'none'}")
    assert invariants.violation_count == 0, invariants.report()
    assert invariants.orchestrator_samples >= 10, invariants.summary()


@dataclass
class Load:
    """A bounded loop of HTTP requests, from the machine, to every running container of
    the realm's deployments (over the engine's bridge, as a client on the machine would
    reach them): which instances answered in each round."""

    fleet: RealFleet
    realm: str
    interval: float = 0.1
    limit_s: float = 120.0
    rounds: list[tuple[float, frozenset[str]]] = field(default_factory=list)
    requests: int = 0
    failures: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Load:
        self._thread = threading.Thread(target=self._run, name="load", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30.0)

    def answered_at_least(self, deployment: str, floor: int) -> list[str]:
        """Rounds in which fewer than `floor` instances of `deployment` answered."""
        prefix = f"{deployment}-"
        return [
            f"at {at:.1f} s: {sorted(i for i in ok if i.startswith(prefix))}"
            for at, ok in self.rounds
            if sum(1 for i in ok if i.startswith(prefix)) < floor
        ]

    def _run(self) -> None:
        started = time.monotonic()
        with contextlib.closing(docker.from_env()) as engine:
            while not self._stop.is_set() and time.monotonic() - started < self.limit_s:
                answered = set()
                for container in engine.containers.list(
                    filters={"label": f"ozwald.realm={self.realm}", "status": "running"},
                    ignore_removed=True,
                ):
                    service = str(container.labels.get(SERVICE_LABEL, ""))
                    if self._ask(container.attrs):
                        answered.add(service)
                self.rounds.append((time.monotonic() - started, frozenset(answered)))
                self._stop.wait(self.interval)

    def _ask(self, attrs: Mapping[str, Any]) -> bool:
        networks: Mapping[str, Mapping[str, str]] = attrs["NetworkSettings"]["Networks"]
        addresses = [n["IPAddress"] for n in networks.values() if n.get("IPAddress")]
        if not addresses:
            return False
        self.requests += 1
        connection = http.client.HTTPConnection(addresses[0], 8080, timeout=1.0)
        try:
            connection.request("GET", "/healthz")
            ok = connection.getresponse().status == 200
        except OSError:
            ok = False
        finally:
            connection.close()
        if not ok:
            self.failures += 1
        return ok


def test_a_drain_under_load_moves_what_can_move_within_max_parallel(
    ops_fleet: RealFleet, realm: str, workdir: Path
) -> None:
    """echo (3 replicas, spread: one per host) and side (2 replicas, packed by binpack),
    then the host running side is drained with a 12 s deadline while a load loop keeps
    asking every container over HTTP. side's instances move one at a time to hosts that
    can take them; echo's instance there cannot go anywhere (the other hosts run echo
    already) and stays until the deadline, when it is stopped and waits PENDING: one of
    three down, which max_parallel 1 allows. Uncordoning the host places it back. At every
    sample at most one instance of each deployment is down, and in every load round at
    least replicas - 1 of each answered."""
    fleet = ops_fleet
    echo, side = Spec("echo", 3), Spec("side", 2, spread=False)
    apply(fleet, write_config(workdir, realm, [echo, side], "v1"))
    placed = settled(fleet, realm, [echo, side])
    drained = max(placed, key=lambda h: (sum(i.startswith("side-") for i in placed[h]), h))
    on_it = placed[drained]
    assert any(i.startswith("side-") for i in on_it), placed
    [stays] = [i for i in on_it if i.startswith("echo-")]

    invariants = Invariants([echo.watched(), side.watched()])
    with RealWatch(fleet, realm, invariants), Load(fleet, realm) as load:
        time.sleep(0.5)  # a few rounds before the drain
        started = time.monotonic()
        with fleet.client() as client:
            host = client.drain_host(drained, 12.0)
        assert host.cordoned and host.drain.state == FS.DRAIN_STATE_RUNNING

        def drain_ended() -> FS.HostDrain | None:
            drain = fleet.hosts()[drained].drain
            return drain if drain.state != FS.DRAIN_STATE_RUNNING else None

        drain = wait_until(
            f"{drained}'s drain to end", drain_ended, WAIT_S, lambda: describe(fleet, realm)
        )
        drained_s = time.monotonic() - started
        during = instances(fleet)
        with fleet.client() as client:
            client.uncordon_host(drained)
        after = settled(fleet, realm, [echo, side])

    assert_held(invariants)
    assert drain.state == FS.DRAIN_STATE_DEADLINE_PASSED, drain
    assert during[stays].state == FS.INSTANCE_STATE_PENDING, describe(fleet, realm)
    assert "spread" in during[stays].reason, during[stays].reason
    for instance_id in on_it:
        if instance_id.startswith("side-"):
            assert during[instance_id].host_id not in ("", drained), during[instance_id]
    moved = [m for m in events(fleet, "drain-progress") if f" off {drained} " in m]
    assert sorted(m.split()[1] for m in moved) == sorted(i for i in on_it if i != stays)
    [deadline] = events(fleet, "drain-deadline")
    assert stays in deadline, deadline
    assert stays in after[drained], after
    assert versions(fleet) == {"echo": (1, 3), "side": (1, 2)}
    containers(fleet, realm)
    print(
        f"drained {drained} ({on_it}): deadline passed after {drained_s:.1f} s; "
        f"{load.requests} requests in {len(load.rounds)} rounds, {load.failures} failed"
    )
    assert len(load.rounds) >= 20, len(load.rounds)
    assert load.answered_at_least("echo", echo.replicas - 1) == []
    assert load.answered_at_least("side", side.replicas - 1) == []


def test_a_version_that_never_passes_its_health_check_is_reverted(
    ops_fleet: RealFleet, realm: str, workdir: Path
) -> None:
    """echo (3 replicas, spread, max_parallel 1, auto_revert) rolls out a version whose
    health check command always fails. Only max_parallel instances ever get it; the
    rollout fails at its progress deadline and is REVERTED; the revert succeeds with every
    instance back on version 1's spec and RUNNING; the instances the broken version never
    reached keep their containers."""
    fleet = ops_fleet
    strategy = {"healthy_deadline": "4s", "progress_deadline": "6s", "auto_revert": True}
    good = Spec("echo", 3, **strategy)  # type: ignore[arg-type]
    broken = Spec("echo", 3, health=NEVER_HEALTHY, **strategy)  # type: ignore[arg-type]
    apply(fleet, write_config(workdir, realm, [good], "v1"))
    settled(fleet, realm, [good])
    before = containers(fleet, realm)
    with fleet.client() as client:
        first = client.get_deployment("echo").deployment

    invariants = Invariants([good.watched()])
    with RealWatch(fleet, realm, invariants) as watch:
        started = time.monotonic()
        apply(fleet, write_config(workdir, realm, [broken], "v2"))
        watch.follow_rollout("echo")
        revert = wait_rollout(fleet, realm, "echo", revert=True)
        reverted_s = time.monotonic() - started
        settled(fleet, realm, [good])

    assert_held(invariants)
    assert invariants.max_on_version[("echo", 2)] <= 1, invariants.max_on_version
    assert (revert.id, revert.from_version, revert.to_version) == (2, 2, 3)
    assert versions(fleet) == {"echo": (3, 3)}
    with fleet.client() as client:
        stored = client.get_deployment("echo")
    assert list(stored.deployment.candidates) == list(first.candidates)
    assert {i.deployment_version for i in stored.instances} == {3}
    after = containers(fleet, realm)
    replaced = sorted(i for i in before if after.get(i) != before[i])
    assert len(replaced) <= 1, (replaced, before, after)
    [failed] = events(fleet, "rollout-failed")
    assert "no instance became healthy" in failed, failed
    [reverted] = events(fleet, "rollout-reverted")
    assert "reverted to version 1's spec as version 3" in reverted, reverted
    print(f"reverted and the revert done {reverted_s:.1f} s after the apply; replaced {replaced}")


def test_a_host_failing_mid_rollout_neither_fails_the_rollout_nor_adds_to_the_loss(
    ops_fleet: RealFleet, realm: str, workdir: Path
) -> None:
    """echo (3 replicas, spread: one per host, max_parallel 1, auto_revert) rolls out a
    new release. While the first new instance runs but has not yet proved healthy, the
    host of an instance still on version 1 fails: its agent is SIGKILLed and its
    containers killed. No other host may take the lost instance (spread), so the
    deployment is one down until that machine is back. Availability: the lost instance is
    set aside from the moment its host dies; the rollout must not add to the loss, so the
    last version-1 instance is not replaced while the lost one is down (with one down,
    max_parallel 1 is spent). The machine comes back after the host was declared LOST:
    the lost instance starts there with the new release, the rollout then finishes and
    SUCCEEDS, without a revert: a host failure is no reason to revert a release."""
    fleet = ops_fleet
    strategy = {"min_healthy": "3s", "healthy_deadline": "30s", "progress_deadline": "40s"}
    v1 = Spec("echo", 3, auto_revert=True, **strategy)  # type: ignore[arg-type]
    v2 = Spec("echo", 3, release="2", auto_revert=True, **strategy)  # type: ignore[arg-type]
    apply(fleet, write_config(workdir, realm, [v1], "v1"))
    settled(fleet, realm, [v1])

    invariants = Invariants([v1.watched()])
    with RealWatch(fleet, realm, invariants) as watch:
        apply(fleet, write_config(workdir, realm, [v2], "v2"))
        watch.follow_rollout("echo")

        def first_running() -> list[FS.Instance] | None:
            found = sorted(instances(fleet).values(), key=lambda i: i.ordinal)
            new = [i for i in found if i.deployment_version == 2]
            old = [i for i in found if i.deployment_version == 1 and i.state == RUNNING]
            ready = len(new) == 1 and new[0].state == RUNNING and len(old) == 2
            return old if ready else None

        old = wait_until(
            "the first new instance RUNNING, two still on version 1",
            first_running,
            WAIT_S,
            lambda: describe(fleet, realm),
        )
        lost, kept = old[-1], old[0]
        victim = fleet.network.host_named(lost.host_id)
        watch.took("echo", [lost.id])
        failed_at = time.monotonic()
        fleet.fail_host(victim)
        fleet.wait_for_hosts({victim.name: FS.HOST_STATE_LOST}, timeout=LOSS_S)
        # Down for the whole grace: the last version-1 instance was left alone.
        while_lost = instances(fleet)
        fleet.start_agent(victim)
        fleet.wait_for_hosts({victim.name: FS.HOST_STATE_READY}, timeout=30.0)
        done = wait_rollout(fleet, realm, "echo", revert=False)
        recovered_s = time.monotonic() - failed_at
        placed = settled(fleet, realm, [v2])

    assert_held(invariants)
    assert while_lost[kept.id].deployment_version == 1, while_lost[kept.id]
    assert while_lost[kept.id].state == RUNNING, while_lost[kept.id]
    assert while_lost[lost.id].state != RUNNING, while_lost[lost.id]
    assert [r for r, _ in invariants.rollout_states["echo"]] == [1] * len(
        invariants.rollout_states["echo"]
    ), invariants.rollout_states["echo"]
    assert (done.from_version, done.to_version, done.healthy) == (1, 2, 3)
    assert versions(fleet) == {"echo": (2, 3)}
    assert placed[victim.name] == [lost.id], placed
    assert {i.deployment_version for i in instances(fleet).values()} == {2}
    assert events(fleet, "rollout-reverted") == []
    containers(fleet, realm)
    print(
        f"{victim.name} failed with {lost.id} mid-rollout ({kept.id} left on version 1 "
        f"meanwhile); the rollout succeeded {recovered_s:.1f} s after the failure"
    )


def test_an_orchestrator_sigkilled_mid_rollout_continues_it_after_restart(
    ops_fleet: RealFleet, realm: str, workdir: Path
) -> None:
    """echo (3 replicas, spread, max_parallel 1, healthy after 2 s) rolls out a new
    release; once one new instance is healthy the orchestrator is SIGKILLed and started
    again RESTART_DELAY_S later on the same store, while the agents redial with their
    backoff. The watch samples the agents and the engine during the outage and the
    orchestrator again once it answers. The same rollout (same id, one rollout-started
    event) continues and SUCCEEDS; the stored version is the one before the kill; the
    instance already healthy keeps its container."""
    fleet = ops_fleet
    v1 = Spec("echo", 3, min_healthy="2s")
    v2 = Spec("echo", 3, release="2", min_healthy="2s")
    apply(fleet, write_config(workdir, realm, [v1], "v1"))
    settled(fleet, realm, [v1])

    invariants = Invariants([v1.watched()])
    with RealWatch(fleet, realm, invariants) as watch:
        apply(fleet, write_config(workdir, realm, [v2], "v2"))
        watch.follow_rollout("echo")

        def mid_way() -> R.Rollout | None:
            current = rollout(fleet, "echo")
            return (
                current
                if current.healthy >= 1 and current.state == R.ROLLOUT_STATE_RUNNING
                else None
            )

        before = wait_until(
            "one instance healthy on version 2", mid_way, WAIT_S, lambda: describe(fleet, realm)
        )
        stored = versions(fleet)
        running = containers(fleet, realm)
        healthy = {
            i.id: running[i.id]
            for i in instances(fleet).values()
            if i.deployment_version == 2 and i.state == RUNNING and i.id in running
        }
        killed_at = time.monotonic()
        fleet.kill_orchestrator()
        time.sleep(RESTART_DELAY_S)
        fleet.start_orchestrator()
        fleet.wait_for_hosts(
            {host.name: FS.HOST_STATE_READY for host in fleet.network.hosts}, timeout=30.0
        )
        after = wait_rollout(fleet, realm, "echo", revert=False)
        finished_s = time.monotonic() - killed_at
        settled(fleet, realm, [v2])

    assert_held(invariants)
    assert invariants.outages >= 1, "the watch never saw the orchestrator down"
    assert after.id == before.id == 1 and (after.from_version, after.to_version) == (1, 2)
    assert len(events(fleet, "rollout-started")) == 1
    assert versions(fleet) == stored == {"echo": (2, 3)}
    now = containers(fleet, realm)
    assert {i: now.get(i) for i in healthy} == healthy, "a healthy new instance was replaced again"
    print(
        f"orchestrator SIGKILLed with {before.updated}/3 updated, {before.healthy} healthy; "
        f"the rollout succeeded {finished_s:.1f} s after the kill"
    )
