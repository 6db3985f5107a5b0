"""The fleet recovers on real processes, real links and the real Docker Engine.

Three real agents in network namespaces share one engine with a real orchestrator
(ozwald_testbed.real_fleet). One deployment of the tiny echo service runs two instances,
one per host (spread), so the third host is where a lost instance has to go. Each test
checks what the engine really runs against what the orchestrator says, and that no
instance ever runs twice once the fleet has settled.

Timings (conftest.TIMINGS): heartbeats every 0.5 s, a host is DOWN after 2 s of silence
and LOST (its instances placed elsewhere) 5 s after that.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ozwald_testbed.netns import NamespaceHost
from ozwald_testbed.real_fleet import RealFleet
from tests.integration.fleet_real.conftest import TIMINGS
from tests.integration.fleet_real.fleet_support import (
    DEPLOYMENT,
    HostState,
    InstanceState,
    apply,
    cli,
    container_ids,
    describe,
    instances,
    placement,
    wait_converged,
    wait_no_drift,
    wait_until,
    write_fleet_config,
)

pytestmark = pytest.mark.integration

REPLICAS = 2
# Time for a host to go DOWN and then LOST, with room for a busy machine.
LOSS_TIMEOUT = TIMINGS.heartbeat_ttl + TIMINGS.reschedule_grace + 15.0


@pytest.fixture
def deployed(fleet: RealFleet, realm: str, workdir: Path) -> dict[str, list[str]]:
    """The echo deployment applied and running: host name -> instance ids there."""
    apply(fleet, write_fleet_config(workdir, realm, REPLICAS))
    placed = wait_converged(fleet, realm, REPLICAS)
    assert sorted(len(ids) for ids in placed.values()) == [0, 1, 1], placed
    return placed


def _busy_and_free(
    fleet: RealFleet, placed: dict[str, list[str]]
) -> tuple[NamespaceHost, str, NamespaceHost]:
    """A host with an instance, that instance, and the host with none."""
    busy = next(name for name, ids in sorted(placed.items()) if ids)
    free = next(name for name, ids in placed.items() if not ids)
    return fleet.network.host_named(busy), placed[busy][0], fleet.network.host_named(free)


def _host_state(fleet: RealFleet, host: NamespaceHost) -> HostState.ValueType:
    return fleet.hosts()[host.name].state


def test_a_failed_host_has_its_instance_started_on_the_free_host_after_the_grace(
    fleet: RealFleet, realm: str, deployed: dict[str, list[str]]
) -> None:
    dead, moved, free = _busy_and_free(fleet, deployed)
    fleet.fail_host(dead)
    failed_at = time.monotonic()

    fleet.wait_for_hosts({dead.name: HostState.HOST_STATE_DOWN}, timeout=LOSS_TIMEOUT)
    # Within the grace nothing moves: a short outage must not double the fleet's work.
    during_grace = instances(fleet)[moved]
    assert during_grace.host_id == dead.name, describe(fleet, realm)
    assert during_grace.state == InstanceState.INSTANCE_STATE_HOST_DOWN, describe(fleet, realm)

    fleet.wait_for_hosts({dead.name: HostState.HOST_STATE_LOST}, timeout=LOSS_TIMEOUT)
    placed = wait_converged(fleet, realm, REPLICAS)
    converged_s = time.monotonic() - failed_at
    assert placed[free.name] == [moved], describe(fleet, realm)
    assert placed[dead.name] == []
    assert instances(fleet)[moved].reschedules == 1
    print(f"failed host to its instance running elsewhere: {converged_s:.1f} s")

    # The machine comes back: it is told it runs nothing, and nothing runs twice.
    fleet.start_agent(dead)
    fleet.wait_for_hosts({dead.name: HostState.HOST_STATE_READY}, timeout=30.0)
    assert wait_converged(fleet, realm, REPLICAS) == placed
    container_ids(fleet, realm)
    wait_no_drift(fleet)


def test_a_short_partition_moves_nothing_and_a_long_one_moves_and_then_cleans_up(
    fleet: RealFleet, realm: str, deployed: dict[str, list[str]]
) -> None:
    cut, instance, free = _busy_and_free(fleet, deployed)
    before = container_ids(fleet, realm)

    # Shorter than the grace: DOWN, then back, and the instance stays where it runs.
    fleet.partition(cut)
    fleet.wait_for_hosts({cut.name: HostState.HOST_STATE_DOWN}, timeout=LOSS_TIMEOUT)
    fleet.heal(cut)
    fleet.wait_for_hosts({cut.name: HostState.HOST_STATE_READY}, timeout=30.0)
    assert wait_converged(fleet, realm, REPLICAS) == deployed
    assert container_ids(fleet, realm) == before, "a short partition restarted something"
    assert instances(fleet)[instance].reschedules == 0

    # Longer than the grace: LOST, and the instance starts on the free host.
    fleet.partition(cut)
    fleet.wait_for_hosts({cut.name: HostState.HOST_STATE_LOST}, timeout=LOSS_TIMEOUT)
    wait_until(
        f"{instance} to run on {free.name}",
        lambda: (
            instances(fleet)[instance].host_id == free.name
            and instance in fleet.running_services(realm)[free.name]
        ),
        timeout=60.0,
    )
    # The cut-off agent hears nothing, so it keeps what it runs (as a real host would):
    # for now the instance runs twice.
    assert instance in fleet.running_services(realm)[cut.name], describe(fleet, realm)

    # Healed, the agent learns it no longer holds the instance and stops its copy.
    fleet.heal(cut)
    fleet.wait_for_hosts({cut.name: HostState.HOST_STATE_READY}, timeout=30.0)
    placed = wait_converged(fleet, realm, REPLICAS)
    assert placed[free.name] == [instance]
    assert placed[cut.name] == []
    container_ids(fleet, realm)
    wait_no_drift(fleet)


def test_a_restarted_agent_adopts_its_containers(
    fleet: RealFleet, realm: str, deployed: dict[str, list[str]]
) -> None:
    host, instance, _ = _busy_and_free(fleet, deployed)
    before = container_ids(fleet, realm)

    fleet.kill_agent(host)
    # A crashed agent on a live host: its containers live on.
    assert instance in fleet.running_services(realm)[host.name]
    fleet.start_agent(host)
    fleet.wait_for_hosts({host.name: HostState.HOST_STATE_READY}, timeout=30.0)

    assert wait_converged(fleet, realm, REPLICAS) == deployed
    assert container_ids(fleet, realm) == before, "the restarted agent replaced a container"
    assert instances(fleet)[instance].reschedules == 0
    wait_no_drift(fleet)


def test_a_restarted_orchestrator_keeps_the_desired_state_and_duplicates_nothing(
    fleet: RealFleet, realm: str, workdir: Path, deployed: dict[str, list[str]]
) -> None:
    before = container_ids(fleet, realm)
    with fleet.client() as client:
        (stored,) = client.list_deployments().deployments

    fleet.kill_orchestrator()
    fleet.start_orchestrator()
    fleet.wait_for_hosts(
        {host.name: HostState.HOST_STATE_READY for host in fleet.network.hosts}, timeout=30.0
    )
    assert wait_converged(fleet, realm, REPLICAS) == deployed
    assert container_ids(fleet, realm) == before, "an orchestrator restart restarted a container"
    with fleet.client() as client:
        (after,) = client.list_deployments().deployments
    assert after == stored

    # The same file again, with the CLI over TCP, changes nothing; one more replica goes to
    # the free host.
    again = cli(fleet, "apply", "-f", str(write_fleet_config(workdir, realm, REPLICAS)))
    assert f"= keep {DEPLOYMENT}" in again, again
    with fleet.client() as client:
        assert client.get_deployment(DEPLOYMENT).deployment.version == stored.version
    cli(fleet, "apply", "-f", str(write_fleet_config(workdir, realm, REPLICAS + 1)))
    placed = wait_converged(fleet, realm, REPLICAS + 1)
    assert all(len(ids) == 1 for ids in placed.values()), placed
    assert {i: c for i, c in container_ids(fleet, realm).items() if i in before} == before
    assert placement(fleet) == placed
    wait_no_drift(fleet)
