"""Sampling the real testbed in a background thread while a scenario runs.

Every `interval` seconds the watch asks:

- the orchestrator, over its unix socket (ListDeployments with every instance, GetRollout
  for the deployments it follows), with a short timeout and no retries, so that an
  orchestrator being restarted shows as a sample it did not answer;
- each real agent, over its own unix socket (ListServices of the realm): which instances
  it reports READY. An agent that does not answer (killed) reports nothing;
- the Docker Engine: the running containers each agent made (its agent-id label and its
  name prefix), by instance id.

Each observation goes to `Invariants.check` (tests/integration/fleet_sim/
operations_invariants.py). The thread stops when the scenario leaves the `with` block, or
after `limit_s` whatever happens, and one last sample is taken after the stop.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import defaultdict
from types import TracebackType

from ozwald.agent.v1 import service_status_pb2
from ozwald.orchestrator.v1 import deployment_pb2, fleet_state_pb2, rollout_pb2

from ozwald_sdk.agent_client import AgentClient
from ozwald_sdk.errors import OzwaldError, RolloutNotFoundError
from ozwald_sdk.orchestrator_client import FleetClient
from ozwald_sdk.retry import RetryPolicy
from ozwald_testbed.real_fleet import SERVICE_LABEL, RealFleet
from tests.integration.fleet_sim.operations_invariants import Invariants, Observation

logger = logging.getLogger(__name__)

READY = service_status_pb2.INSTANCE_STATE_READY
ASK_TIMEOUT_S = 1.5
NO_RETRY = RetryPolicy(max_attempts=1)

Answer = tuple[
    dict[str, deployment_pb2.Deployment],
    list[fleet_state_pb2.Instance],
    dict[str, rollout_pb2.Rollout],
]


class RealWatch:
    """Checks `invariants` against the real testbed until the block ends."""

    def __init__(
        self,
        fleet: RealFleet,
        realm: str,
        invariants: Invariants,
        *,
        interval: float = 0.15,
        limit_s: float = 150.0,
    ) -> None:
        self.fleet = fleet
        self.realm = realm
        self.invariants = invariants
        self.interval = interval
        self.limit_s = limit_s
        self.rollouts: set[str] = set()
        self.error: BaseException | None = None
        # Guards `invariants` and `rollouts`: the scenario reads and changes them too.
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="real-watch", daemon=True)
        self._started = 0.0

    def follow_rollout(self, deployment: str) -> None:
        with self.lock:
            self.rollouts.add(deployment)

    def took(self, deployment: str, instance_ids: list[str]) -> None:
        with self.lock:
            self.invariants.took(deployment, instance_ids)

    def __enter__(self) -> RealWatch:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=30.0)
        if self._thread.is_alive():
            raise AssertionError("the watch thread did not stop within 30 s")
        if self.error is not None and exc is None:
            raise AssertionError(f"the watch failed: {self.error!r}") from self.error

    def _run(self) -> None:
        orchestrator = FleetClient(
            f"unix://{self.fleet.orchestrator_socket}", timeout=ASK_TIMEOUT_S, retry=NO_RETRY
        )
        agents = {
            host.name: AgentClient(
                f"unix://{self.fleet.agent_socket(host)}", timeout=ASK_TIMEOUT_S, retry=NO_RETRY
            )
            for host in self.fleet.network.hosts
        }
        try:
            while True:
                if time.monotonic() - self._started > self.limit_s:
                    logger.warning("watch stopped after its limit of %.0f s", self.limit_s)
                    return
                last = self._stop.is_set()
                self._sample(orchestrator, agents)
                if last:
                    return
                self._stop.wait(self.interval)
        except BaseException as e:  # reported by __exit__: a broken watch must fail the test
            self.error = e
        finally:
            orchestrator.close()
            for client in agents.values():
                client.close()

    def _sample(self, orchestrator: FleetClient, agents: dict[str, AgentClient]) -> None:
        answer = self._ask(orchestrator)
        ready_on = self._ready(agents)
        copies = self._containers()
        at = time.monotonic() - self._started
        if answer is None:
            seen = Observation(at=at, ready_on=ready_on, copies=copies)
        else:
            deployments, instances, rollouts = answer
            seen = Observation(
                at=at,
                deployments=deployments,
                instances=instances,
                rollouts=rollouts,
                ready_on=ready_on,
                copies=copies,
            )
        with self.lock:
            self.invariants.check(seen)

    def _ask(self, client: FleetClient) -> Answer | None:
        with self.lock:
            follow = sorted(self.rollouts)
        try:
            listed = client.list_deployments()
            rollouts: dict[str, rollout_pb2.Rollout] = {}
            for name in follow:
                with contextlib.suppress(RolloutNotFoundError):
                    rollouts[name] = client.get_rollout(name)
        except OzwaldError as e:
            logger.info("the orchestrator did not answer a sample: %s", e)
            return None
        return {d.name: d for d in listed.deployments}, list(listed.instances), rollouts

    def _ready(self, agents: dict[str, AgentClient]) -> dict[str, list[str]]:
        """instance id -> the hosts whose agent reports it READY now."""
        ready: dict[str, list[str]] = defaultdict(list)
        for host_name, client in agents.items():
            try:
                statuses = client.list_services(realm=self.realm).instances
            except OzwaldError:
                continue  # a dead agent reports nothing
            for status in statuses:
                if status.state == READY:
                    ready[status.name].append(host_name)
        return dict(ready)

    def _containers(self) -> dict[str, list[str]]:
        """instance id -> the hosts where a container of it is running now."""
        copies: dict[str, list[str]] = defaultdict(list)
        for host in self.fleet.network.hosts:
            for container in self.fleet.host_containers(host, realm=self.realm, running_only=True):
                copies[str(container.labels.get(SERVICE_LABEL, ""))].append(host.name)
        return dict(copies)
