"""Applying a deployment to the real testbed and checking what the Docker Engine runs
against what the orchestrator says, with every wait bounded."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ozwald.orchestrator.v1 import fleet_state_pb2

from ozwald_sdk.config import load_config
from ozwald_sdk.config.deployments import resolve_deployments
from ozwald_testbed.netns import NamespaceHost
from ozwald_testbed.real_fleet import RealFleet

Instance = fleet_state_pb2.Instance
InstanceState = fleet_state_pb2.InstanceState
HostState = fleet_state_pb2.HostState
T = TypeVar("T")

DEPLOYMENT = "echo"


def write_fleet_config(directory: Path, realm: str, replicas: int) -> Path:
    """The tiny echo service as a fleet deployment, `replicas` copies, one per host.

    The health check runs inside the container (exec through the engine's socket) rather
    than as HTTP from the agent: an agent in a namespace has no route to the engine's
    bridge networks, and a partition must not cut an agent off its own containers, which
    on a real host it never would."""
    path = directory / f"{realm}.yml"
    path.write_text(
        f"""version: 1
realms:
  {realm}:
    services:
      echo:
        image: ozwald/tiny:local
        connector_port: 8080
        health_check:
          command: [wget, -q, -O, /dev/null, "http://127.0.0.1:8080/healthz"]
          interval: 1s
          timeout: 1s
          retries: 2
        resources: {{memory: 32MiB, cpus: 0.1}}
fleet:
  deployments:
    {DEPLOYMENT}:
      service: echo
      realm: {realm}
      variety: any
      replicas: {replicas}
      constraints: {{spread: true}}
"""
    )
    return path


def cli(fleet: RealFleet, *args: str) -> str:
    """`ozwald ARGS` against the testbed's orchestrator over TCP, with the operator
    certificate (mutual TLS across the testbed's bridge); its output, or AssertionError."""
    tls = fleet.operator_tls()
    argv = [sys.executable, "-m", "ozwald_sdk.cli.main", "--orchestrator"]
    argv += [fleet.orchestrator_address, "--tls-ca", str(tls.ca), "--tls-cert", str(tls.cert)]
    argv += ["--tls-key", str(tls.key), *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"ozwald {' '.join(args)} exited {done.returncode}: {done.stderr}"
    return done.stdout


def apply(fleet: RealFleet, config: Path) -> None:
    with fleet.client() as client:
        client.apply_deployments(resolve_deployments(load_config(config)))


def instances(fleet: RealFleet) -> dict[str, Instance]:
    with fleet.client() as client:
        return {i.id: i for i in client.list_instances(deployment=DEPLOYMENT)}


def placement(fleet: RealFleet) -> dict[str, list[str]]:
    """host name -> instance ids the orchestrator placed there."""
    placed: dict[str, list[str]] = {host.name: [] for host in fleet.network.hosts}
    for instance in instances(fleet).values():
        if instance.host_id:
            placed.setdefault(instance.host_id, []).append(instance.id)
    return {host: sorted(ids) for host, ids in placed.items()}


def host_of(fleet: RealFleet, instance_id: str) -> NamespaceHost:
    return fleet.network.host_named(instances(fleet)[instance_id].host_id)


def wait_until(what: str, check: Callable[[], T | None], timeout: float) -> T:
    """`check()` until it returns something other than None (or False)."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = check()
        if last is not None and last is not False:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}")
        time.sleep(0.2)


def converged(fleet: RealFleet, realm: str, replicas: int) -> dict[str, list[str]] | None:
    """The placement, once every instance RUNS where the orchestrator placed it, each as
    exactly one running container on that host and nowhere else; else None."""
    seen = instances(fleet)
    if len(seen) != replicas:
        return None
    if any(i.state != InstanceState.INSTANCE_STATE_RUNNING for i in seen.values()):
        return None
    placed = placement(fleet)
    return placed if fleet.running_services(realm) == placed else None


def describe(fleet: RealFleet, realm: str) -> str:
    """What the orchestrator and the engine say, for an assertion's message."""
    rows = [
        f"{i.id}: {InstanceState.Name(i.state)} on {i.host_id or '-'} ({i.reason})"
        for i in instances(fleet).values()
    ]
    hosts = [f"{h.id}={HostState.Name(h.state)}" for h in fleet.hosts().values()]
    return f"instances {rows}; hosts {hosts}; engine runs {fleet.running_services(realm)}"


def wait_converged(
    fleet: RealFleet, realm: str, replicas: int, timeout: float = 60.0
) -> dict[str, list[str]]:
    try:
        return wait_until(
            "the engine to run what the orchestrator placed",
            lambda: converged(fleet, realm, replicas),
            timeout,
        )
    except AssertionError as e:
        raise AssertionError(f"{e}: {describe(fleet, realm)}") from None


def wait_no_drift(fleet: RealFleet, timeout: float = 30.0) -> None:
    """Until the orchestrator finds no difference between what hosts run and are assigned."""

    def drift() -> list[str]:
        with fleet.client() as client:
            return [f"{d.host_id}/{d.instance}: {d.detail}" for d in client.get_drift()]

    seen: list[str] = []

    def settled() -> bool:
        nonlocal seen
        seen = drift()
        return not seen

    try:
        wait_until("no drift", settled, timeout)
    except AssertionError as e:
        raise AssertionError(f"{e}; drift: {seen}") from None


def container_ids(fleet: RealFleet, realm: str) -> dict[str, str]:
    """instance id -> the id of its running container, over every host."""
    found: dict[str, str] = {}
    for host in fleet.network.hosts:
        for container in fleet.host_containers(host, realm=realm, running_only=True):
            service = str(container.labels.get("ozwald.service", ""))
            assert service not in found, f"{service} runs twice: {describe(fleet, realm)}"
            found[service] = str(container.id)
    return found
