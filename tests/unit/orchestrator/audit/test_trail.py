"""The audit trail on a real Fleet and a real AuditLog: each change of fleet state is
recorded once, with who made it and the state before and after; heartbeats and requests
that change nothing are not recorded."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ozwald.orchestrator.v1 import audit_service_pb2

from ozwald_orchestrator.audit import AuditLog, AuditQuery, agent_actor
from ozwald_orchestrator.audit.trail import current_actor, set_actor
from ozwald_orchestrator.fleet import Fleet
from tests.unit.orchestrator.fakes import deployment
from tests.unit.orchestrator.test_fleet import SETTINGS, Harness

OPERATOR = "operator:alice"


class AuditedHarness(Harness):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.log = AuditLog(path / "orchestrator.db", now=self.clock.now)
        self.fleet = Fleet(self.store, SETTINGS, self.clock, random.Random(7), audit=self.log)

    def records(self, after: int = 0) -> list[audit_service_pb2.AuditRecord]:
        assert self.log.flush(timeout=5)
        records, _ = self.log.query(AuditQuery(after_sequence=after))
        return records

    def last_sequence(self) -> int:
        return self.log.head_sequence


@pytest.fixture
def audited(tmp_path: Path) -> Iterator[AuditedHarness]:
    harness = AuditedHarness(tmp_path)
    yield harness
    harness.log.close()


def _json(text: str) -> Any:
    return json.loads(text) if text else None


def _summary(records: list[audit_service_pb2.AuditRecord]) -> list[tuple[str, str, str]]:
    return [(r.actor, r.kind, r.instance or r.deployment or r.host_id) for r in records]


@pytest.mark.asyncio
async def test_an_operator_s_apply_and_what_the_orchestrator_made_of_it(
    audited: AuditedHarness,
) -> None:
    with audited.fleet.audit.acting(agent_actor("h1")):
        audited.join("h1")
    set_actor(OPERATOR)
    await audited.apply(deployment("web", 1))
    await audited.fleet.audit.committed()
    records = audited.records()
    assert _summary(records) == [
        ("agent:h1", "host-joined", "h1"),
        (OPERATOR, "deployment-created", "web"),
        ("orchestrator", "instance-created", "web-0"),
        ("orchestrator", "instance-placed", "web-0"),
        ("orchestrator", "assignment-changed", "h1"),
    ]
    joined, created, instance_created, placed, assignment = records
    assert _json(joined.before_json) is None
    assert _json(joined.after_json)["cpus"] == 8
    assert _json(created.after_json)["replicas"] == 1
    assert _json(instance_created.after_json)["state"] == "PENDING"
    assert (_json(placed.before_json)["host_id"], _json(placed.after_json)["host_id"]) == (
        "",
        "h1",
    )
    assert _json(placed.after_json)["state"] == "ASSIGNED"
    assert placed.deployment == "web" and placed.host_id == "h1"
    assert _json(assignment.after_json) == {"version": 1, "instances": ["web-0"]}

    # The same apply again changes nothing and records nothing.
    head = audited.last_sequence()
    await audited.apply(deployment("web", 1))
    await audited.fleet.audit.committed()
    assert audited.records(head) == []

    # An update records the deployment before and after.
    await audited.apply(deployment("web", 2))
    updated = next(r for r in audited.records(head) if r.kind == "deployment-updated")
    assert (_json(updated.before_json)["replicas"], _json(updated.after_json)["replicas"]) == (
        1,
        2,
    )
    assert updated.actor == OPERATOR


@pytest.mark.asyncio
async def test_agent_reports_are_the_agent_s_and_heartbeats_record_nothing(
    audited: AuditedHarness,
) -> None:
    audited.join("h1")
    await audited.apply(deployment("web", 1))
    head = audited.last_sequence()
    with audited.fleet.audit.acting(agent_actor("h1")):
        audited.admit("h1", audited.assignments("h1")[-1])
    for _ in range(5):
        audited.clock.advance(1)
        with audited.fleet.audit.acting(agent_actor("h1")):
            audited.heartbeat("h1")
    await audited.fleet.persister.flush()
    [running] = audited.records(head)
    assert (running.actor, running.kind, running.instance) == (
        "agent:h1",
        "instance-state-changed",
        "web-0",
    )
    assert (_json(running.before_json)["state"], _json(running.after_json)["state"]) == (
        "ASSIGNED",
        "RUNNING",
    )


@pytest.mark.asyncio
async def test_a_host_going_down_and_its_instances_are_the_orchestrator_s(
    audited: AuditedHarness,
) -> None:
    audited.join("h1")
    await audited.apply(deployment("web", 1))
    audited.admit("h1", audited.assignments("h1")[-1])
    audited.fleet.audit.settle()
    head = audited.last_sequence()
    audited.clock.advance(3.5)
    audited.fleet.check_health()
    records = audited.records(head)
    assert _summary(records) == [
        ("orchestrator", "host-state-changed", "h1"),
        ("orchestrator", "instance-state-changed", "web-0"),
    ]
    assert _json(records[0].before_json) == {
        "state": "READY",
        "connected": True,
        "cordoned": False,
        "drain": "",
    }
    assert _json(records[0].after_json)["state"] == "DOWN"
    assert _json(records[1].after_json)["state"] == "HOST_DOWN"

    # It speaks again: the agent brought it back.
    head = audited.last_sequence()
    with audited.fleet.audit.acting(agent_actor("h1")):
        audited.heartbeat("h1")
    assert _summary(audited.records(head)) == [
        ("agent:h1", "host-state-changed", "h1"),
        ("agent:h1", "instance-state-changed", "web-0"),
    ]


@pytest.mark.asyncio
async def test_scaling_down_records_the_instance_deleted(audited: AuditedHarness) -> None:
    audited.join("h1")
    await audited.apply(deployment("web", 2))
    head = audited.last_sequence()
    await audited.apply(deployment("web", 1))
    deleted = [r for r in audited.records(head) if r.kind == "instance-deleted"]
    assert [(r.instance, r.deployment, r.host_id) for r in deleted] == [("web-1", "web", "h1")]
    assert _json(deleted[0].after_json) is None


@pytest.mark.asyncio
async def test_a_change_no_step_settled_is_recorded_by_the_next_store_write(
    audited: AuditedHarness,
) -> None:
    audited.join("h1")
    await audited.apply(deployment("web", 1))
    audited.fleet.audit.settle()
    head = audited.last_sequence()
    set_actor(agent_actor("h1"))
    record = audited.fleet.state.hosts["h1"]
    audited.fleet.disconnected(audited.sessions["h1"], "the agent closed the stream")
    assert audited.records(head) == []
    set_actor("orchestrator")
    await audited.fleet.persister.flush()
    [disconnected] = audited.records(head)
    # Attributed to whoever made the change, not to whoever wrote it down.
    assert disconnected.actor == "agent:h1"
    assert _json(disconnected.after_json)["connected"] is False
    assert record.host.connected is False


def test_the_actor_of_a_step_ends_with_it(audited: AuditedHarness) -> None:
    assert current_actor() == "orchestrator"
    with audited.fleet.audit.acting(OPERATOR):
        assert current_actor() == OPERATOR
    assert current_actor() == "orchestrator"


@pytest.mark.asyncio
async def test_a_cordon_is_the_operator_s_host_state_change(audited: AuditedHarness) -> None:
    audited.join("h1")
    audited.fleet.audit.settle()
    head = audited.last_sequence()
    set_actor(OPERATOR)
    await audited.fleet.cordon("h1")
    await audited.fleet.audit.committed()
    [cordoned] = audited.records(head)
    assert (cordoned.actor, cordoned.kind, cordoned.host_id) == (
        OPERATOR,
        "host-state-changed",
        "h1",
    )
    assert (_json(cordoned.before_json)["cordoned"], _json(cordoned.after_json)["cordoned"]) == (
        False,
        True,
    )


@pytest.mark.asyncio
async def test_a_rollout_is_on_record_as_it_starts_and_changes(audited: AuditedHarness) -> None:
    audited.join("h1")
    await audited.apply(deployment("web", 2))
    audited.admit("h1", audited.assignments("h1")[-1])
    audited.fleet.audit.settle()
    head = audited.last_sequence()
    set_actor(OPERATOR)
    await audited.apply(deployment("web", 2, image="ozwald/tiny:v2"))
    await audited.fleet.audit.committed()
    records = audited.records(head)
    # The operator's apply started it; the orchestrator carries it out.
    [started] = [r for r in records if r.kind == "rollout-started"]
    assert (started.actor, started.deployment) == (OPERATOR, "web")
    after = _json(started.after_json)
    assert (after["from_version"], after["to_version"], after["state"]) == (1, 2, "RUNNING")
    replaced = [r for r in records if r.kind == "instance-state-changed"]
    assert replaced and all(r.actor == "orchestrator" for r in replaced)
