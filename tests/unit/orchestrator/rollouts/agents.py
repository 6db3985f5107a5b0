"""Agents for rollout and drain tests: each host runs its latest assignment, and a spec
is reported ready or left starting as the test decides."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ozwald.agent.v1 import plan_pb2, service_status_pb2
from ozwald.common.v1 import service_spec_pb2
from ozwald.orchestrator.v1 import (
    agent_link_service_pb2,
    deployment_pb2,
    fleet_state_pb2,
    rollout_pb2,
)

from ozwald_sdk.fingerprint import fingerprint
from tests.unit.orchestrator.fakes import FakeClock, deployment
from tests.unit.orchestrator.test_fleet import Harness

Health = Callable[[service_spec_pb2.ServiceSpec], bool]
RUNNING = fleet_state_pb2.INSTANCE_STATE_RUNNING


def ready_unless_broken(spec: service_spec_pb2.ServiceSpec) -> bool:
    """Images tagged :broken never become ready."""
    return not spec.image.endswith(":broken")


class Fleet3(Harness):
    """A Harness whose agents carry out what they are sent."""

    def __init__(self, path: Path, clock: FakeClock | None = None) -> None:
        super().__init__(path, clock)
        self.health: Health = ready_unless_broken

    def agents(self) -> None:
        """Every host admits its newest assignment and reports each instance."""
        for host_id in sorted(self.sessions):
            sent = self.assignments(host_id)
            record = self.fleet.state.hosts[host_id]
            if sent:
                newest = sent[-1]
                plan = plan_pb2.Plan(admitted=True)
                for spec in newest.services:
                    plan.actions.add(
                        kind=plan_pb2.ACTION_KIND_START,
                        name=spec.name,
                        fingerprint=fingerprint(spec),
                    )
                self.fleet.assignment_result(
                    record,
                    agent_link_service_pb2.AssignmentResult(
                        version=newest.version, admitted=True, plan=plan
                    ),
                )
            statuses = [
                service_status_pb2.InstanceStatus(
                    realm=spec.realm,
                    name=spec.name,
                    state=service_status_pb2.INSTANCE_STATE_READY
                    if self.health(spec)
                    else service_status_pb2.INSTANCE_STATE_STARTING,
                    fingerprint=fingerprint(spec),
                )
                for spec in record.assignment.services
            ]
            assigned = {s.name for s in record.assignment.services}
            self.fleet.observe(record, statuses, [n for n in record.observed if n not in assigned])

    async def tick(self, seconds: float) -> None:
        """Time passes, agents stay in touch and run what they were sent, a pass runs."""
        self.clock.advance(seconds)
        self.heartbeat(*self.sessions)
        self.agents()
        await self.settle()
        self.agents()
        await self.settle()

    def unavailable(self, name: str) -> int:
        return sum(1 for r in self.fleet.state.instances_of(name) if r.instance.state != RUNNING)

    def versions(self, name: str) -> list[int]:
        return [r.instance.deployment_version for r in self.fleet.state.instances_of(name)]

    def images(self, name: str) -> list[str]:
        return [
            r.spec.image if r.spec is not None else "" for r in self.fleet.state.instances_of(name)
        ]

    def rollout(self, name: str) -> rollout_pb2.Rollout:
        return self.fleet.rollout(name)


def web(
    replicas: int = 3,
    *,
    image: str = "ozwald/tiny:1",
    max_parallel: int = 1,
    min_healthy_s: int = 10,
    healthy_deadline_s: int = 60,
    progress_deadline_s: int = 120,
    auto_revert: bool = False,
    canaries: int = 0,
    auto_promote: bool = False,
) -> deployment_pb2.Deployment:
    d = deployment("web", replicas, image=image)
    d.update.max_parallel = max_parallel
    d.update.min_healthy_time.FromSeconds(min_healthy_s)
    d.update.healthy_deadline.FromSeconds(healthy_deadline_s)
    d.update.progress_deadline.FromSeconds(progress_deadline_s)
    d.update.auto_revert = auto_revert
    d.update.canaries = canaries
    d.update.auto_promote = auto_promote
    return d
