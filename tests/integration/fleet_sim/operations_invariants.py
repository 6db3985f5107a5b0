"""What every fleet-operations scenario asserts at every sample, on either testbed.

A scenario (tests/integration/fleet_sim/test_operations_scenarios.py and
tests/integration/fleet_real/test_operations_scenarios.py) samples the fleet every ~150 ms
in the background: the orchestrator's FleetService (ListDeployments with every instance,
GetRollout) and what the agents themselves report (the simulated runtimes; the real
agents' own ListServices). Each `Observation` is checked here as it arrives; a violation
is recorded with the second it was seen, and the scenario fails on any at the end.

The invariants, for each watched deployment D with `replicas` R and `max_parallel` M:

- No desired state lost: the orchestrator lists exactly the expected deployments; D keeps
  R replicas; D's version never goes down (also across an orchestrator restart); D's
  instances are exactly D-0 .. D-(R-1), each listed once.
- No duplicate instance: no instance id is READY (the agents' RUNNING) on two hosts at
  once, as the agents report it. Copies that merely exist (starting, or a container not
  yet stopped) are counted, not failed, here: a scenario asserts there is exactly one of
  each once it has settled.
- Availability never below the limit: at most M of D's instances are not RUNNING, by
  the orchestrator's word. When a host failure takes instances away (`took`), those are
  set aside: at most M of the *other* instances are not RUNNING at any sample. And the
  rollout or drain never adds to what the failure took: from one answer to the next,
  instances going down (other than those the failure took) never bring D past
  max(M, what was down at the previous answer), the disruption budget's own rule. By
  the agents' word (they see a loss before the orchestrator does, which may still act
  on what it last heard), at least R - M - (instances the failure took) instances are
  READY somewhere.
- Rollouts only move forward: a deployment's rollout id never goes down, and a rollout
  that ended (SUCCEEDED, FAILED, REVERTED, SUPERSEDED) stays in that state.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ozwald.orchestrator.v1 import deployment_pb2, fleet_state_pb2, rollout_pb2

RUNNING = fleet_state_pb2.INSTANCE_STATE_RUNNING
ENDED = frozenset(
    {
        rollout_pb2.ROLLOUT_STATE_SUCCEEDED,
        rollout_pb2.ROLLOUT_STATE_FAILED,
        rollout_pb2.ROLLOUT_STATE_REVERTED,
        rollout_pb2.ROLLOUT_STATE_SUPERSEDED,
    }
)
# Violations kept in full; past this only counted (a broken invariant repeats every sample).
MAX_KEPT = 40


@dataclass(frozen=True)
class Watched:
    """A deployment whose invariants are checked."""

    name: str
    replicas: int
    max_parallel: int


@dataclass(frozen=True)
class Observation:
    """One sample of the fleet. `deployments` is None when the orchestrator did not
    answer (it is being restarted); `ready_on` and `copies` are None when the agents were
    not asked."""

    at: float
    deployments: Mapping[str, deployment_pb2.Deployment] | None = None
    instances: Sequence[fleet_state_pb2.Instance] = ()
    rollouts: Mapping[str, rollout_pb2.Rollout] = field(default_factory=dict)
    # instance id -> the hosts whose agent reports it READY.
    ready_on: Mapping[str, Sequence[str]] | None = None
    # instance id -> the hosts where a copy of it exists (the simulated runtimes: in any
    # state but stopping; the engine: a running container).
    copies: Mapping[str, Sequence[str]] | None = None


class Invariants:
    """Checks observations against the invariants above and keeps what it saw."""

    def __init__(self, watched: Iterable[Watched], *, others: Iterable[str] = ()) -> None:
        self.watched = {w.name: w for w in watched}
        # Every deployment the orchestrator must list: the watched ones and bystanders.
        self.expected = set(self.watched) | set(others)
        self.taken: dict[str, set[str]] = defaultdict(set)
        self.violations: list[str] = []
        self.violation_count = 0
        self.samples = 0
        self.orchestrator_samples = 0
        self.agent_samples = 0
        self.outages = 0
        self.min_running: dict[str, int] = {w.name: w.replicas for w in self.watched.values()}
        self.min_ready: dict[str, int] = {w.name: w.replicas for w in self.watched.values()}
        # (deployment, version) -> the most instances seen on that version at once.
        self.max_on_version: dict[tuple[str, int], int] = defaultdict(int)
        # instance id -> the most hosts seen holding a copy of it at once.
        self.max_copies: dict[str, int] = defaultdict(int)
        self.versions_seen: dict[str, list[int]] = defaultdict(list)
        self.rollout_states: dict[str, list[tuple[int, str]]] = defaultdict(list)
        self._version: dict[str, int] = {}
        self._rollout: dict[str, rollout_pb2.Rollout] = {}
        # deployment -> its instances RUNNING at the previous answer.
        self._running: dict[str, set[str]] = {}

    def took(self, deployment: str, instance_ids: Iterable[str]) -> None:
        """A host failure took these instances of `deployment` away."""
        self.taken[deployment].update(instance_ids)

    def check(self, seen: Observation) -> None:
        self.samples += 1
        if seen.deployments is None:
            self.outages += 1
        else:
            self.orchestrator_samples += 1
            self._desired_state(seen)
            self._availability(seen)
            self._rollouts(seen)
        if seen.ready_on is not None:
            self.agent_samples += 1
            self._agents(seen, seen.ready_on)
        if seen.copies is not None:
            for instance_id, hosts in seen.copies.items():
                self.max_copies[instance_id] = max(self.max_copies[instance_id], len(hosts))

    def summary(self) -> str:
        """A line for the test's output: what was sampled and the worst seen."""
        running = ", ".join(f"{d} >= {n}" for d, n in sorted(self.min_running.items()))
        ready = ", ".join(f"{d} >= {n}" for d, n in sorted(self.min_ready.items()))
        return (
            f"{self.samples} samples ({self.orchestrator_samples} from the orchestrator, "
            f"{self.agent_samples} from the agents, {self.outages} while the orchestrator "
            f"did not answer); RUNNING (orchestrator) {running}; READY (agents) {ready}; "
            f"{self.violation_count} violation(s)"
        )

    def report(self) -> str:
        """The violations, for an assertion's message."""
        more = self.violation_count - len(self.violations)
        tail = [f"... and {more} more"] if more > 0 else []
        return "\n".join([self.summary(), *self.violations, *tail])

    # The checks -------------------------------------------------------------------------

    def _violation(self, seen: Observation, what: str) -> None:
        self.violation_count += 1
        if len(self.violations) < MAX_KEPT:
            self.violations.append(f"at {seen.at:.2f} s: {what}")

    def _desired_state(self, seen: Observation) -> None:
        assert seen.deployments is not None
        listed = set(seen.deployments)
        if listed != self.expected:
            self._violation(
                seen,
                f"deployments {sorted(listed)}, expected {sorted(self.expected)} (missing "
                f"{sorted(self.expected - listed)}, extra {sorted(listed - self.expected)})",
            )
        by_deployment: dict[str, list[str]] = defaultdict(list)
        for instance in seen.instances:
            by_deployment[instance.deployment].append(instance.id)
        for name, watched in self.watched.items():
            deployment = seen.deployments.get(name)
            if deployment is None:
                continue
            last = self._version.get(name, 0)
            if deployment.version < last:
                self._violation(
                    seen, f"{name} went back from version {last} to {deployment.version}"
                )
            if deployment.version != last:
                self.versions_seen[name].append(deployment.version)
            self._version[name] = max(last, deployment.version)
            if deployment.replicas != watched.replicas:
                self._violation(
                    seen, f"{name} has {deployment.replicas} replicas, expected {watched.replicas}"
                )
            ids = sorted(by_deployment.get(name, []))
            expected_ids = sorted(f"{name}-{n}" for n in range(watched.replicas))
            if ids != expected_ids:
                self._violation(seen, f"{name}'s instances are {ids}, expected {expected_ids}")

    def _availability(self, seen: Observation) -> None:
        for name, watched in self.watched.items():
            mine = [i for i in seen.instances if i.deployment == name]
            versions: dict[int, int] = defaultdict(int)
            for instance in mine:
                versions[instance.deployment_version] += 1
            for version, count in versions.items():
                key = (name, version)
                self.max_on_version[key] = max(self.max_on_version[key], count)
            running = sum(1 for i in mine if i.state == RUNNING)
            self.min_running[name] = min(self.min_running[name], running)
            taken = self.taken.get(name, set())
            down = sorted(
                f"{i.id}={fleet_state_pb2.InstanceState.Name(i.state)}"
                for i in mine
                if i.state != RUNNING and i.id not in taken
            )
            missing = watched.replicas - len(mine)
            if len(down) + max(0, missing) > watched.max_parallel:
                self._violation(
                    seen,
                    f"{name}: {len(down) + max(0, missing)} instance(s) not RUNNING "
                    f"(max_parallel {watched.max_parallel}; set aside as taken by a host "
                    f"failure: {sorted(taken) or 'none'}): {', '.join(down)}",
                )
            self._no_more_down(seen, watched, mine, taken)

    def _no_more_down(
        self,
        seen: Observation,
        watched: Watched,
        mine: Sequence[fleet_state_pb2.Instance],
        taken: set[str],
    ) -> None:
        """The budget's own rule, step by step: instances going down (other than those a
        host failure took) never bring the deployment past max(max_parallel, what was
        down at the previous sample). It catches a rollout or drain that adds to a loss,
        which the count above allows for; checked between consecutive answers, so a
        change that comes and goes between two samples may pass unseen."""
        running = {i.id for i in mine if i.state == RUNNING}
        down_now = watched.replicas - len(running)
        previous = self._running.get(watched.name)
        self._running[watched.name] = running
        if previous is None:
            return
        down_before = watched.replicas - len(previous)
        went_down = previous - running
        by_failure = went_down & taken
        others = sorted(went_down - taken)
        if others and down_now - len(by_failure) > max(watched.max_parallel, down_before):
            self._violation(
                seen,
                f"{watched.name}: {', '.join(others)} went down with {down_before} "
                f"already down (now {down_now}; max_parallel {watched.max_parallel}; "
                f"taken by a host failure: {sorted(taken) or 'none'})",
            )

    def _rollouts(self, seen: Observation) -> None:
        for name, rollout in seen.rollouts.items():
            state = rollout_pb2.RolloutState.Name(rollout.state)
            history = self.rollout_states[name]
            if not history or history[-1] != (rollout.id, state):
                history.append((rollout.id, state))
            last = self._rollout.get(name)
            if last is not None:
                if rollout.id < last.id:
                    self._violation(
                        seen, f"{name}'s rollout went back from {last.id} to {rollout.id}"
                    )
                    continue
                if rollout.id == last.id and last.state in ENDED and rollout.state != last.state:
                    self._violation(
                        seen,
                        f"{name}'s rollout {rollout.id} ended "
                        f"{rollout_pb2.RolloutState.Name(last.state)} and then became {state}",
                    )
                    continue
            self._rollout[name] = rollout

    def _agents(self, seen: Observation, ready_on: Mapping[str, Sequence[str]]) -> None:
        for instance_id, hosts in sorted(ready_on.items()):
            if len(hosts) > 1:
                self._violation(seen, f"{instance_id} is READY on {sorted(hosts)} at once")
        for name, watched in self.watched.items():
            ready = sum(1 for n in range(watched.replicas) if ready_on.get(f"{name}-{n}"))
            self.min_ready[name] = min(self.min_ready[name], ready)
            floor = watched.replicas - watched.max_parallel - len(self.taken.get(name, ()))
            if ready < floor:
                self._violation(
                    seen,
                    f"{name}: the agents report {ready} instance(s) READY, fewer than "
                    f"{floor} (replicas {watched.replicas} - max_parallel "
                    f"{watched.max_parallel} - taken by a host failure "
                    f"{len(self.taken.get(name, ()))})",
                )
