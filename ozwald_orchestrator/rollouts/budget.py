"""The disruption budget: how many of a deployment's instances may be down at once.

Rollouts and drains both take instances down on purpose, and both ask this one budget
first, in the same reconcile pass, so together they never take a deployment below what
its update strategy allows. An instance is unavailable when it is not RUNNING, whatever
the cause (starting, failing, on a host that is down): a deployment already at or over
its budget for other reasons is not disrupted further, so the invariant is

    unavailable after a step <= max(max_parallel, unavailable before it)

Taking down an instance that is already unavailable costs nothing and is always allowed:
replacing it cannot make things worse. Rollouts and drains do not take down an instance
whose host is DOWN at all: it may still run there, out of reach, and would run twice. It
counts as unavailable until its host is back or LOST.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ozwald.orchestrator.v1 import deployment_pb2, fleet_state_pb2

from ozwald_orchestrator.rollouts.strategy import Strategy
from ozwald_orchestrator.state import FleetState, InstanceRecord

RUNNING = fleet_state_pb2.INSTANCE_STATE_RUNNING


def available(instance: fleet_state_pb2.Instance) -> bool:
    return instance.state == RUNNING


def unavailable_count(instances: Iterable[fleet_state_pb2.Instance]) -> int:
    return sum(1 for i in instances if not available(i))


@dataclass
class Budget:
    """One deployment's budget within one pass."""

    max_parallel: int
    unavailable: int

    def allows(self, instance_available: bool, in_flight: int = 0) -> bool:
        """Whether taking down an instance (available or not) keeps within the budget;
        `in_flight` more count as unavailable for this question (a rollout's replacements
        that run but have not proved healthy yet)."""
        return not instance_available or self.unavailable + in_flight < self.max_parallel

    def take(self, instance_available: bool) -> None:
        if instance_available:
            self.unavailable += 1


class Budgets:
    """Every deployment's budget for one pass, worked out when first asked for."""

    def __init__(self, state: FleetState) -> None:
        self._state = state
        self._budgets: dict[str, Budget] = {}

    def of(self, deployment: deployment_pb2.Deployment) -> Budget:
        budget = self._budgets.get(deployment.name)
        if budget is None:
            budget = Budget(
                Strategy.of(deployment.update).max_parallel,
                unavailable_count(r.instance for r in self._state.instances_of(deployment.name)),
            )
            self._budgets[deployment.name] = budget
        return budget

    def try_take(self, deployment: deployment_pb2.Deployment, record: InstanceRecord) -> bool:
        """Take `record` down if the budget allows; True when it did."""
        budget = self.of(deployment)
        up = available(record.instance)
        if not budget.allows(up):
            return False
        budget.take(up)
        return True
