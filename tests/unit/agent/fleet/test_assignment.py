"""Applying assignments as the FLEET scope: atomic, idempotent per version, remembered
across restarts, and kept apart from the operator's dynamic and persistent services."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from ozwald.agent.v1 import plan_pb2, service_status_pb2
from ozwald.orchestrator.v1 import agent_link_service_pb2 as link_pb2

from ozwald_agent.fleet.assignment import AssignmentHandler
from ozwald_agent.runtime.container_info import ContainerState
from ozwald_agent.state.store import AgentStore
from tests.unit.admission.builders import service
from tests.unit.agent.fleet.agent_parts import (
    DYNAMIC,
    FLEET,
    PERSISTENT,
    AgentParts,
    agent_parts,
    instance,
)

S = service_status_pb2


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[AgentParts]:
    made = agent_parts(tmp_path)
    yield made
    made.close()


def _handler(parts: AgentParts) -> AssignmentHandler:
    return AssignmentHandler(parts.provisioner, parts.store)


def _generations(parts: AgentParts) -> dict[str, int]:
    return {d.spec.name: d.generation for d in parts.store.desired()}


def test_an_admitted_assignment_becomes_the_fleet_set_and_its_version_is_kept(
    parts: AgentParts, tmp_path: Path
) -> None:
    result = _handler(parts).handle(
        link_pb2.Assignment(version=7, services=[instance("web-0"), instance("web-1")])
    )

    assert result.version == 7 and result.admitted, result
    assert not result.error
    starts = {a.name for a in result.plan.actions if a.kind == plan_pb2.ACTION_KIND_START}
    assert starts == {"web-0", "web-1"}
    assert parts.provisioner.scope_keys(FLEET) == {("fleet", "web-0"), ("fleet", "web-1")}
    assert {d.scope for d in parts.store.desired()} == {FLEET}
    # Another store on the same file: what a restarted agent reads.
    reopened = AgentStore(tmp_path / "agent.db")
    assert reopened.fleet_assignment()[0] == 7
    reopened.close()


def test_the_applied_version_again_changes_nothing(parts: AgentParts) -> None:
    handler = _handler(parts)
    assignment = link_pb2.Assignment(version=3, services=[instance("web-0")])
    handler.handle(assignment)
    before = _generations(parts)

    again = handler.handle(assignment)

    assert again.admitted and again.version == 3
    # Not re-applied: a new generation would retry failed instances on its own.
    assert _generations(parts) == before


def test_the_same_version_with_other_services_is_applied(parts: AgentParts) -> None:
    # An orchestrator with a new store counts its versions from 1 again.
    handler = _handler(parts)
    handler.handle(link_pb2.Assignment(version=1, services=[instance("web-0")]))

    result = handler.handle(link_pb2.Assignment(version=1, services=[instance("api-0")]))

    assert result.admitted
    assert parts.provisioner.scope_keys(FLEET) == {("fleet", "api-0")}


def test_the_order_of_the_services_does_not_make_another_assignment(parts: AgentParts) -> None:
    handler = _handler(parts)
    handler.handle(link_pb2.Assignment(version=2, services=[instance("a-0"), instance("b-0")]))
    before = _generations(parts)

    handler.handle(link_pb2.Assignment(version=2, services=[instance("b-0"), instance("a-0")]))

    assert _generations(parts) == before


def test_the_applied_version_is_applied_again_when_a_service_was_stopped_here(
    parts: AgentParts,
) -> None:
    handler = _handler(parts)
    assignment = link_pb2.Assignment(version=3, services=[instance("web-0"), instance("web-1")])
    handler.handle(assignment)
    parts.provisioner.stop_services([plan_pb2.ServiceRef(realm="fleet", name="web-1")])

    again = handler.handle(assignment)

    assert again.admitted
    assert parts.provisioner.scope_keys(FLEET) == {("fleet", "web-0"), ("fleet", "web-1")}


def test_a_refused_assignment_changes_nothing_and_answers_with_the_plan(
    parts: AgentParts,
) -> None:
    handler = _handler(parts)
    handler.handle(link_pb2.Assignment(version=1, services=[instance("small-0")]))

    result = handler.handle(
        link_pb2.Assignment(
            version=2, services=[instance("small-0"), instance("huge-0", memory_gib=64)]
        )
    )

    assert not result.admitted and result.version == 2
    assert [r.name for r in result.plan.refusals] == ["huge-0"]
    assert "memory" in result.plan.refusals[0].message
    assert parts.store.fleet_assignment()[0] == 1
    assert parts.provisioner.scope_keys(FLEET) == {("fleet", "small-0")}


def test_fleet_services_count_in_the_admission_of_dynamic_ones(parts: AgentParts) -> None:
    # Memory is counted through the host's MemAvailable (which a running instance has
    # already lowered); CPUs are a budget of declarations, so they show the counting here.
    _handler(parts).handle(link_pb2.Assignment(version=1, services=[instance("big-0", cpus=6)]))

    refused = parts.provisioner.plan([service("local", cpus=4)], DYNAMIC)
    fits = parts.provisioner.plan([service("local", cpus=1)], DYNAMIC)

    assert not refused.admitted
    assert "cpu" in refused.refusals[0].message.lower()
    assert fits.admitted
    kept = [a for a in fits.actions if a.name == "big-0"]
    assert [a.kind for a in kept] == [plan_pb2.ACTION_KIND_KEEP]


def test_dynamic_and_persistent_applies_leave_the_fleet_set_alone(parts: AgentParts) -> None:
    _handler(parts).handle(link_pb2.Assignment(version=1, services=[instance("web-0")]))

    parts.provisioner.apply([service("local")], DYNAMIC)
    parts.provisioner.apply([service("keeper")], PERSISTENT)
    parts.provisioner.apply([], DYNAMIC)

    assert parts.provisioner.scope_keys(FLEET) == {("fleet", "web-0")}
    assert parts.provisioner.scope_keys(PERSISTENT) == {("default", "keeper")}


def test_stopping_without_names_stops_only_dynamic_services(parts: AgentParts) -> None:
    _handler(parts).handle(link_pb2.Assignment(version=1, services=[instance("web-0")]))
    parts.provisioner.apply([service("local")], DYNAMIC)

    stopping, _ = parts.provisioner.stop_services([])

    assert [(r.realm, r.name) for r in stopping] == [("default", "local")]
    assert parts.provisioner.scope_keys(FLEET) == {("fleet", "web-0")}


def test_an_empty_assignment_empties_the_fleet_set(parts: AgentParts) -> None:
    handler = _handler(parts)
    handler.handle(link_pb2.Assignment(version=1, services=[instance("web-0")]))

    result = handler.handle(link_pb2.Assignment(version=2))

    assert result.admitted
    assert [a.kind for a in result.plan.actions] == [plan_pb2.ACTION_KIND_STOP]
    assert parts.provisioner.scope_keys(FLEET) == set()
    assert parts.store.fleet_assignment()[0] == 2


def test_a_fleet_instance_that_crashes_is_restarted_by_the_agent(parts: AgentParts) -> None:
    _handler(parts).handle(link_pb2.Assignment(version=1, services=[instance("web-0")]))
    reconciler = parts.provisioner.reconciler
    reconciler.reconcile_once()
    reconciler.reconcile_once()
    (container,) = parts.runtime.containers.values()
    parts.runtime.containers[container.id] = dataclasses.replace(
        container, state=ContainerState.EXITED, exit_code=137
    )

    reconciler.reconcile_once()

    (status,) = parts.store.instances()
    assert status.state == S.INSTANCE_STATE_RESTARTING
    assert status.restart_count == 1
    assert "exited with code 137" in status.reason
