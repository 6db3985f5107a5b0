"""The fleet core on a fake clock: placement, assignments, failure, recovery, drift, restart.

The Fleet runs against a real SQLite store in a temporary directory; its background
loops are not started: each test drives a pass, a health check or a drift check itself.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import pytest
from ozwald.agent.v1 import plan_pb2, service_status_pb2
from ozwald.orchestrator.v1 import (
    agent_link_service_pb2,
    deployment_pb2,
    fleet_service_pb2,
    fleet_state_pb2,
)

from ozwald_orchestrator.fleet import Fleet, FleetSettings
from ozwald_orchestrator.health_monitor import HealthSettings
from ozwald_orchestrator.sessions import AgentSession
from ozwald_orchestrator.state import HostRecord
from ozwald_orchestrator.store.sqlite import SqliteFleetStore
from ozwald_sdk.fingerprint import fingerprint
from tests.unit.orchestrator.fakes import FakeClock, deployment, register

SETTINGS = FleetSettings(
    health=HealthSettings(heartbeat_interval_s=1, heartbeat_ttl_s=3, reschedule_grace_s=5),
    drift_grace_s=10,
)
RUNNING = fleet_state_pb2.INSTANCE_STATE_RUNNING
READY = service_status_pb2.INSTANCE_STATE_READY


class Harness:
    """A Fleet and the sessions of the agents that joined it."""

    def __init__(self, path: Path, clock: FakeClock | None = None) -> None:
        self.path = path
        self.clock = clock or FakeClock()
        self.store = SqliteFleetStore(path / "orchestrator.db")
        self.fleet = Fleet(self.store, SETTINGS, self.clock, random.Random(7))
        self.sessions: dict[str, AgentSession] = {}

    def join(
        self,
        host_id: str,
        *,
        applied_version: int = 0,
        instances: Sequence[service_status_pb2.InstanceStatus] = (),
        labels: dict[str, str] | None = None,
    ) -> HostRecord:
        session = AgentSession(host_id, f"ipv4:127.0.0.1:{len(self.sessions) + 1000}")
        self.sessions[host_id] = session
        message = register(
            host_id, applied_version=applied_version, instances=instances, labels=labels
        )
        return self.fleet.connect(session, message)

    def sent(self, host_id: str) -> list[agent_link_service_pb2.ConnectResponse]:
        outbox = self.sessions[host_id].outbox
        messages = []
        while not outbox.empty():
            message = outbox.get_nowait()
            if message is not None:
                messages.append(message)
        return messages

    def assignments(self, host_id: str) -> list[agent_link_service_pb2.Assignment]:
        return [m.assignment for m in self.sent(host_id) if m.WhichOneof("message") == "assignment"]

    def admit(self, host_id: str, assignment: agent_link_service_pb2.Assignment) -> None:
        """Answer as an agent that admitted the assignment and runs it, ready."""
        record = self.fleet.state.hosts[host_id]
        plan = plan_pb2.Plan(admitted=True)
        statuses = []
        for spec in assignment.services:
            plan.actions.add(
                kind=plan_pb2.ACTION_KIND_START, name=spec.name, fingerprint=fingerprint(spec)
            )
            statuses.append(
                service_status_pb2.InstanceStatus(
                    realm=spec.realm, name=spec.name, state=READY, fingerprint=fingerprint(spec)
                )
            )
        self.fleet.assignment_result(
            record,
            agent_link_service_pb2.AssignmentResult(
                version=assignment.version, admitted=True, plan=plan
            ),
        )
        self.fleet.observe(
            record,
            statuses,
            [name for name in record.observed if name not in {s.name for s in assignment.services}],
        )

    def heartbeat(self, *host_ids: str) -> None:
        for host_id in host_ids:
            self.fleet.seen(self.fleet.state.hosts[host_id])

    def instance(self, instance_id: str) -> fleet_state_pb2.Instance:
        return self.fleet.state.instances[instance_id].instance

    def events(self, kind: str) -> list[str]:
        return [e.message for e in self.store.read_events(0, 10_000) if e.kind == kind]

    async def apply(
        self, *deployments: deployment_pb2.Deployment
    ) -> fleet_service_pb2.ApplyDeploymentsResponse:
        return await self.fleet.apply(list(deployments), [])

    async def settle(self) -> None:
        """One reconcile pass and a write, as the background loops would do."""
        self.fleet.reconcile()
        await self.fleet.persister.flush()


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


@pytest.mark.asyncio
async def test_an_apply_places_instances_and_sends_each_host_its_set(harness: Harness) -> None:
    harness.join("h1")
    harness.join("h2")
    response = await harness.apply(deployment("web", 3, cpus=3))
    placed = {p.instance: p.host_id for p in response.plan.changes[0].instances}
    assert sorted(placed) == ["web-0", "web-1", "web-2"]
    # 8 cores per host, 3 per instance: binpack puts two on one host, one on the other.
    assert sorted(list(placed.values()).count(h) for h in ("h1", "h2")) == [1, 2]
    for host_id in ("h1", "h2"):
        [assignment] = harness.assignments(host_id)
        assert assignment.version == 1
        assert sorted(s.name for s in assignment.services) == sorted(
            i for i, h in placed.items() if h == host_id
        )
        assert all(s.name.startswith("web-") and s.realm == "demo" for s in assignment.services)
    assert len(harness.events("instance-placed")) == 3


@pytest.mark.asyncio
async def test_the_same_apply_twice_stores_and_sends_nothing_new(harness: Harness) -> None:
    harness.join("h1")
    first = await harness.apply(deployment("web", 2))
    harness.sent("h1")
    again = await harness.apply(deployment("web", 2))
    assert again.plan.desired_version == first.plan.desired_version == 1
    assert harness.sent("h1") == []
    assert len(harness.store.desired_versions()) == 1


@pytest.mark.asyncio
async def test_scaling_down_removes_the_highest_ordinals(harness: Harness) -> None:
    harness.join("h1")
    await harness.apply(deployment("web", 4))
    await harness.apply(deployment("web", 2))
    assert sorted(harness.fleet.state.instances) == ["web-0", "web-1"]
    *_, last = harness.assignments("h1")
    assert last.version == 2 and sorted(s.name for s in last.services) == ["web-0", "web-1"]
    assert sorted(i.id for i in harness.store.load().instances) == ["web-0", "web-1"]


@pytest.mark.asyncio
async def test_instances_no_host_can_take_wait_pending_with_the_reason(harness: Harness) -> None:
    harness.join("h1")
    response = await harness.apply(deployment("big", 1, memory_gib=64))
    [placed] = response.plan.changes[0].instances
    assert placed.host_id == ""
    assert "memory" in placed.reason
    assert harness.instance("big-0").state == fleet_state_pb2.INSTANCE_STATE_PENDING
    # A roomier host joins: the next pass places it there.
    session = AgentSession("h2", "peer")
    harness.sessions["h2"] = session
    roomy = register("h2")
    roomy.profile.memory.total_bytes = 128 * 1024**3
    harness.fleet.connect(session, roomy)
    await harness.settle()
    assert harness.instance("big-0").host_id == "h2"


@pytest.mark.asyncio
async def test_a_lost_host_s_instances_move_and_a_short_silence_moves_nothing(
    harness: Harness,
) -> None:
    harness.join("h1")
    harness.join("h2")
    await harness.apply(deployment("web", 1))
    host = harness.instance("web-0").host_id
    other = "h2" if host == "h1" else "h1"
    harness.admit(host, harness.assignments(host)[-1])
    assert harness.instance("web-0").state == RUNNING

    # Silent past the TTL: down, the instance stays; back within the grace: nothing moved.
    harness.clock.advance(3.5)
    harness.heartbeat(other)
    harness.fleet.check_health()
    assert harness.fleet.state.hosts[host].host.state == fleet_state_pb2.HOST_STATE_DOWN
    assert harness.instance("web-0").state == fleet_state_pb2.INSTANCE_STATE_HOST_DOWN
    harness.clock.advance(3.0)
    harness.heartbeat(host, other)
    harness.fleet.check_health()
    await harness.settle()
    assert harness.fleet.state.hosts[host].host.state == fleet_state_pb2.HOST_STATE_READY
    assert harness.instance("web-0").host_id == host
    assert harness.instance("web-0").state == RUNNING
    assert harness.assignments(other) == []

    # Silent past TTL + grace: lost, the instance is placed on the other host.
    harness.clock.advance(3.5)
    harness.heartbeat(other)
    harness.fleet.check_health()
    harness.clock.advance(5.0)
    harness.heartbeat(other)
    harness.fleet.check_health()
    assert harness.fleet.state.hosts[host].host.state == fleet_state_pb2.HOST_STATE_LOST
    await harness.settle()
    moved = harness.instance("web-0")
    assert moved.host_id == other and moved.reschedules == 1
    assert [s.name for s in harness.assignments(other)[-1].services] == ["web-0"]
    assert harness.events("instance-rescheduled") == [f"web-0 placed on {other} as cpu"]
    # The lost host's assignment no longer holds it; it gets that when it speaks again.
    assert list(harness.fleet.state.hosts[host].assignment.services) == []
    harness.heartbeat(host)
    [emptied] = harness.assignments(host)[-1:]
    assert list(emptied.services) == []


@pytest.mark.asyncio
async def test_a_refused_instance_fails_and_is_placed_elsewhere_after_a_backoff(
    harness: Harness,
) -> None:
    harness.join("h1")
    await harness.apply(deployment("web", 1))
    harness.join("h2")
    [assignment] = harness.assignments("h1")
    refusal = plan_pb2.Plan(admitted=False)
    refusal.refusals.add(name="web-0", realm="demo", message="image ozwald/tiny:local is missing")
    harness.fleet.assignment_result(
        harness.fleet.state.hosts["h1"],
        agent_link_service_pb2.AssignmentResult(
            version=assignment.version, admitted=False, plan=refusal
        ),
    )
    failed = harness.instance("web-0")
    assert failed.state == fleet_state_pb2.INSTANCE_STATE_FAILED
    assert "image ozwald/tiny:local is missing" in failed.reason
    await harness.settle()
    assert harness.instance("web-0").host_id == ""  # still backing off
    # h1 gets a set without it at once.
    assert list(harness.assignments("h1")[-1].services) == []
    harness.clock.advance(1.5)
    await harness.settle()
    placed = harness.instance("web-0")
    assert placed.host_id == "h2" and placed.reschedules == 1
    assert len(harness.events("assignment-refused")) == 1


@pytest.mark.asyncio
async def test_an_instance_the_agent_gave_up_on_moves_and_backs_off_longer_each_time(
    harness: Harness,
) -> None:
    harness.join("h1")
    await harness.apply(deployment("web", 1))
    delays = []
    for _ in range(3):
        record = harness.fleet.state.instances["web-0"]
        host = harness.fleet.state.hosts[record.host_id]
        spec = record.spec
        assert spec is not None
        harness.fleet.observe(
            host,
            [
                service_status_pb2.InstanceStatus(
                    name="web-0",
                    state=service_status_pb2.INSTANCE_STATE_FAILED,
                    reason="exited with code 1",
                    fingerprint=fingerprint(spec),
                )
            ],
            [],
        )
        assert harness.instance("web-0").state == fleet_state_pb2.INSTANCE_STATE_FAILED
        delays.append(record.next_attempt - harness.clock.monotonic())
        harness.clock.advance(delays[-1] + 0.01)
        await harness.settle()
        assert harness.instance("web-0").host_id == "h1"  # the only host: back there
    assert delays[0] < delays[1] < delays[2]
    assert harness.instance("web-0").reschedules == 3


@pytest.mark.asyncio
async def test_drift_is_reported_and_corrected_after_the_grace(harness: Harness) -> None:
    record = harness.join("h1")
    await harness.apply(deployment("web", 1))
    [assignment] = harness.assignments("h1")
    harness.admit("h1", assignment)
    stray = service_status_pb2.InstanceStatus(realm="demo", name="old-3", state=READY)
    harness.fleet.observe(record, [stray], [])
    [item] = harness.fleet.drift()
    assert item.kind == fleet_service_pb2.DRIFT_KIND_UNEXPECTED and item.instance == "old-3"
    harness.fleet.correct_drift()
    assert harness.assignments("h1") == []  # younger than the grace
    harness.clock.advance(10.5)
    harness.fleet.correct_drift()
    [again] = harness.assignments("h1")
    assert again.version == assignment.version
    await harness.fleet.persister.flush()
    assert len(harness.events("drift-corrected")) == 1
    # The agent stops it: no drift left.
    harness.fleet.observe(record, [], ["old-3"])
    assert harness.fleet.drift() == []


@pytest.mark.asyncio
async def test_a_spec_mismatch_and_a_missing_instance_are_drift(harness: Harness) -> None:
    record = harness.join("h1")
    await harness.apply(deployment("web", 2))
    [assignment] = harness.assignments("h1")
    harness.admit("h1", assignment)
    harness.fleet.observe(
        record,
        [service_status_pb2.InstanceStatus(name="web-0", state=READY, fingerprint="0" * 64)],
        ["web-1"],
    )
    kinds = {(i.kind, i.instance) for i in harness.fleet.drift()}
    assert kinds == {
        (fleet_service_pb2.DRIFT_KIND_SPEC_MISMATCH, "web-0"),
        (fleet_service_pb2.DRIFT_KIND_MISSING, "web-1"),
    }


@pytest.mark.asyncio
async def test_a_restart_keeps_deployments_and_placements_without_double_booking(
    tmp_path: Path,
) -> None:
    first = Harness(tmp_path)
    first.join("h1")
    await first.apply(deployment("web", 6, cpus=1))
    first.admit("h1", first.assignments("h1")[-1])
    await first.fleet.persister.flush()
    before = {i: r.instance.host_id for i, r in first.fleet.state.instances.items()}
    first.store.close()

    second = Harness(tmp_path, first.clock)
    assert {i: r.instance.host_id for i, r in second.fleet.state.instances.items()} == before
    second.join("h1", applied_version=1)
    assert second.assignments("h1") == []  # it runs what it was assigned
    # 6 of 8 cores are held after the restart: of 4 more, only 2 fit.
    response = await second.apply(deployment("web", 6, cpus=1), deployment("more", 4, cpus=1))
    placed = [p for c in response.plan.changes if c.deployment == "more" for p in c.instances]
    assert sorted(p.host_id for p in placed) == ["", "", "h1", "h1"]


@pytest.mark.asyncio
async def test_an_agent_ahead_of_the_store_gets_a_newer_version(harness: Harness) -> None:
    harness.join("h1")
    await harness.apply(deployment("web", 1))
    harness.sent("h1")
    harness.join("h1", applied_version=7)
    await harness.fleet.persister.flush()
    [assignment] = harness.assignments("h1")
    assert assignment.version == 8 and [s.name for s in assignment.services] == ["web-0"]


@pytest.mark.asyncio
async def test_a_newer_stream_replaces_the_older(harness: Harness) -> None:
    harness.join("h1")
    old = harness.sessions["h1"]
    harness.join("h1")
    assert old.closed and "replaced" in old.close_reason
    harness.fleet.disconnected(old, "gone")
    assert harness.fleet.state.hosts["h1"].host.connected


@pytest.mark.asyncio
async def test_plan_changes_nothing(harness: Harness) -> None:
    harness.join("h1")
    response = harness.fleet.plan([deployment("web", 2)], [])
    assert [p.host_id for p in response.plan.changes[0].instances] == ["h1", "h1"]
    assert harness.fleet.state.instances == {}
    assert harness.fleet.ledger.free("h1").instances == ()
    await harness.fleet.persister.flush()
    assert harness.store.load().deployments == []


@pytest.mark.asyncio
async def test_plan_over_placed_instances_leaves_the_ledger_as_it_was(harness: Harness) -> None:
    harness.join("h1")
    harness.join("h2")
    await harness.apply(deployment("web", 2, cpus=2))
    before = {h: harness.fleet.ledger.free(h) for h in ("h1", "h2")}
    # Bigger instances: both existing ones would be placed again, plus two new ones.
    response = harness.fleet.plan([deployment("web", 4, cpus=3)], [])
    [change] = response.plan.changes
    assert list(change.changed_fields) == ["candidates", "replicas"]
    assert len([p for p in change.instances if p.host_id]) == 4
    assert {h: harness.fleet.ledger.free(h) for h in ("h1", "h2")} == before
    assert sorted(harness.fleet.state.instances) == ["web-0", "web-1"]


@pytest.mark.asyncio
async def test_a_lost_host_that_reconnects_hears_registered_before_its_new_set(
    harness: Harness,
) -> None:
    harness.join("h1")
    harness.join("h2")
    await harness.apply(deployment("web", 1))
    host = harness.instance("web-0").host_id
    harness.admit(host, harness.assignments(host)[-1])
    other = "h2" if host == "h1" else "h1"
    harness.fleet.disconnected(harness.sessions[host], "gone")
    for _ in range(4):
        harness.clock.advance(3.0)
        harness.heartbeat(other)
        harness.fleet.check_health()
    assert harness.fleet.state.hosts[host].host.state == fleet_state_pb2.HOST_STATE_LOST
    await harness.settle()
    harness.join(
        host, applied_version=1, instances=list(harness.fleet.state.hosts[host].observed.values())
    )
    kinds = [m.WhichOneof("message") for m in harness.sent(host)]
    assert kinds == ["registered", "assignment"]
    assert harness.fleet.state.hosts[host].host.state == fleet_state_pb2.HOST_STATE_READY
    # It still reports web-0 until it applies the new set: drift says so.
    assert [(i.kind, i.instance) for i in harness.fleet.drift() if i.host_id == host] == [
        (fleet_service_pb2.DRIFT_KIND_ASSIGNMENT_BEHIND, ""),
        (fleet_service_pb2.DRIFT_KIND_UNEXPECTED, "web-0"),
    ]


@pytest.mark.asyncio
async def test_after_a_restart_hosts_have_the_restart_grace_to_reconnect(tmp_path: Path) -> None:
    first = Harness(tmp_path)
    first.join("h1")
    first.join("h2")
    await first.apply(deployment("web", 2, cpus=5))
    for host_id in ("h1", "h2"):
        for assignment in first.assignments(host_id):
            first.admit(host_id, assignment)
    await first.fleet.persister.flush()
    first.store.close()

    second = Harness(tmp_path, first.clock)
    for _ in range(9):  # 27 s: past TTL + grace, within the 30 s restart grace
        second.clock.advance(3.0)
        second.fleet.check_health()
    # Not heard from yet, but not down either: their instances keep their stored state.
    assert {h.state for h in second.fleet.hosts()} == {fleet_state_pb2.HOST_STATE_READY}
    assert {i.state for i in second.fleet.instances()} == {RUNNING}
    await second.settle()
    assert {i: r.host_id for i, r in second.fleet.state.instances.items()} == {
        i: r.host_id for i, r in first.fleet.state.instances.items()
    }
    # The hold ends at 30 s; then the TTL (3 s) and the reschedule grace (5 s) apply.
    second.clock.advance(6.5)
    second.fleet.check_health()
    assert {h.state for h in second.fleet.hosts()} == {fleet_state_pb2.HOST_STATE_DOWN}
    second.clock.advance(5.0)
    second.fleet.check_health()
    assert {h.state for h in second.fleet.hosts()} == {fleet_state_pb2.HOST_STATE_LOST}


@pytest.mark.asyncio
async def test_an_agent_that_reconnects_late_after_a_restart_is_never_down(
    tmp_path: Path,
) -> None:
    first = Harness(tmp_path)
    first.join("h1")
    await first.apply(deployment("web", 1))
    [assignment] = first.assignments("h1")
    first.admit("h1", assignment)
    await first.fleet.persister.flush()
    first.store.close()

    second = Harness(tmp_path, first.clock)
    for _ in range(40):  # 10 s: an agent's reconnect backoff, well past the TTL
        second.clock.advance(0.25)
        second.fleet.check_health()
    assert second.instance("web-0").state == RUNNING
    second.join(
        "h1",
        applied_version=assignment.version,
        instances=list(first.fleet.state.hosts["h1"].observed.values()),
    )
    for _ in range(10):
        second.clock.advance(1.0)
        second.heartbeat("h1")
        second.fleet.check_health()
    assert second.fleet.state.hosts["h1"].host.state == fleet_state_pb2.HOST_STATE_READY
    assert second.instance("web-0").state == RUNNING
    assert [e for e in second.events("host-down")] == []
    # Heard from, it is timed by its own messages again, hold or not.
    second.clock.advance(3.5)
    second.fleet.check_health()
    assert second.fleet.state.hosts["h1"].host.state == fleet_state_pb2.HOST_STATE_DOWN


@pytest.mark.asyncio
async def test_explain_says_why_each_instance_is_or_is_not_placed(harness: Harness) -> None:
    harness.join("h1")
    await harness.apply(deployment("web", 3, cpus=3))
    response = await harness.fleet.explain("web")
    assert response.strategy == "binpack"
    by_instance = {e.instance: e for e in response.instances}
    assert [by_instance[i].host_id for i in ("web-0", "web-1")] == ["h1", "h1"]
    pending = by_instance["web-2"]
    assert pending.host_id == ""
    assert pending.summary.startswith("web-2 ")
    assert [r.filter for r in pending.rejections] == ["cpu"]
    assert [v.host_id for v in by_instance["web-0"].best] == ["h1"]


@pytest.mark.asyncio
async def test_constraints_choose_the_hosts(harness: Harness) -> None:
    harness.join("h1", labels={"zone": "a"})
    harness.join("h2", labels={"zone": "b"})
    harness.join("h3", labels={"zone": "b"})
    web = deployment("web", 3)
    web.constraints.host_labels["zone"] = "b"
    web.constraints.spread_across_hosts = True
    response = await harness.apply(web)
    placed = {p.instance: p.host_id for p in response.plan.changes[0].instances}
    assert sorted(placed.values()) == ["", "h2", "h3"]
    assert harness.instance("web-2").state == fleet_state_pb2.INSTANCE_STATE_PENDING
