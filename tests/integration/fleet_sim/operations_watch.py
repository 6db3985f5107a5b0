"""Sampling the simulated testbed in the background while a scenario runs.

Every `interval` seconds the watch asks the orchestrator (ListDeployments, which carries
every instance, and GetRollout for the deployments it follows) over a client of its own
with a short timeout and no retries, so that an orchestrator being restarted costs (and
shows as) a sample rather than stalling the watch; and it reads what the simulated
agents' runtimes run at that moment. Each observation goes to `Invariants.check`
(operations_invariants.py). It stops when the scenario leaves the `async with` block, or
after `limit_s` whatever happens; one last sample is taken after the stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from types import TracebackType

from ozwald.agent.v1 import service_status_pb2
from ozwald.orchestrator.v1 import deployment_pb2, fleet_state_pb2, rollout_pb2

from ozwald_sdk.errors import OzwaldError, RolloutNotFoundError
from ozwald_sdk.orchestrator_client import FleetClient
from ozwald_sdk.retry import RetryPolicy
from tests.integration.fleet_sim.operations_invariants import Invariants, Observation
from tests.integration.fleet_sim.simbed import SimBed

logger = logging.getLogger(__name__)

READY = service_status_pb2.INSTANCE_STATE_READY
STOPPING = service_status_pb2.INSTANCE_STATE_STOPPING
# A sample's questions must answer well within this, or the sample counts as an outage.
ASK_TIMEOUT_S = 1.5

Answer = tuple[
    dict[str, deployment_pb2.Deployment],
    list[fleet_state_pb2.Instance],
    dict[str, rollout_pb2.Rollout],
]


class SimWatch:
    """Checks `invariants` against the simulated fleet until the block ends."""

    def __init__(
        self,
        bed: SimBed,
        invariants: Invariants,
        *,
        interval: float = 0.15,
        limit_s: float = 90.0,
    ) -> None:
        self.bed = bed
        self.invariants = invariants
        self.interval = interval
        self.limit_s = limit_s
        # Deployments whose rollout each sample asks for (those that have one).
        self.rollouts: set[str] = set()
        self._client: FleetClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._started = 0.0

    def follow_rollout(self, deployment: str) -> None:
        self.rollouts.add(deployment)

    async def __aenter__(self) -> SimWatch:
        # Not retried: a sample the orchestrator cannot answer now is an outage to count.
        self._client = FleetClient(
            self.bed.orchestrator.socket_target,
            timeout=ASK_TIMEOUT_S,
            retry=RetryPolicy(max_attempts=1),
        )
        self._started = time.monotonic()
        self._task = asyncio.create_task(self._run(), name="sim-watch")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        try:
            if self._task is not None:
                await self._task  # a bug in the watch itself fails the test here
        finally:
            if self._client is not None:
                self._client.close()

    async def _run(self) -> None:
        # One more sample after the scenario says stop: its settled state is checked too.
        while True:
            if time.monotonic() - self._started > self.limit_s:
                logger.warning("watch stopped after its limit of %.0f s", self.limit_s)
                return
            last = self._stop.is_set()
            answer = await asyncio.to_thread(self._ask)
            ready_on, copies = self._agents()
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
            self.invariants.check(seen)
            if last:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval)

    def _ask(self) -> Answer | None:
        """What the orchestrator says now; None when it does not answer (restarting)."""
        assert self._client is not None
        try:
            listed = self._client.list_deployments()
            rollouts: dict[str, rollout_pb2.Rollout] = {}
            for name in sorted(self.rollouts):
                with contextlib.suppress(RolloutNotFoundError):
                    rollouts[name] = self._client.get_rollout(name)
        except OzwaldError as e:
            logger.info("the orchestrator did not answer a sample: %s", e)
            return None
        return {d.name: d for d in listed.deployments}, list(listed.instances), rollouts

    def _agents(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        """instance id -> hosts whose runtime has it READY, and -> hosts with any copy of
        it that is not stopping (read on the event loop the runtimes run on: one instant)."""
        ready: dict[str, list[str]] = defaultdict(list)
        copies: dict[str, list[str]] = defaultdict(list)
        for agent in self.bed.fleet:
            for status in agent.runtime.statuses():
                if status.state == READY:
                    ready[status.name].append(agent.host_id)
                if status.state != STOPPING:
                    copies[status.name].append(agent.host_id)
        return dict(ready), dict(copies)
