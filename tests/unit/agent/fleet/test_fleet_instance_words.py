"""A dynamic update that names a fleet instance is refused, saying it is a fleet
instance the orchestrator assigned (not a persistent service), and the plan shows the
instance kept as one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ozwald.agent.v1 import plan_pb2
from ozwald.orchestrator.v1 import agent_link_service_pb2 as link_pb2

from ozwald_agent.fleet.assignment import AssignmentHandler
from tests.unit.agent.fleet.agent_parts import (
    DYNAMIC,
    PERSISTENT,
    AgentParts,
    agent_parts,
    instance,
)


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[AgentParts]:
    made = agent_parts(tmp_path)
    yield made
    made.close()


def test_a_dynamic_update_naming_a_fleet_instance_says_whose_it_is(parts: AgentParts) -> None:
    AssignmentHandler(parts.provisioner, parts.store).handle(
        link_pb2.Assignment(version=1, services=[instance("web-0")])
    )

    refused = parts.provisioner.plan([instance("web-0")], DYNAMIC)

    assert not refused.admitted
    [refusal] = refused.refusals
    assert refusal.reason == plan_pb2.REFUSAL_REASON_PERSISTENT_SERVICE
    assert "fleet instance the orchestrator assigned to this host" in refusal.message
    assert "persistent" not in refusal.message
    assert "ozwald apply" in refusal.remedy

    other = parts.provisioner.plan([instance("mine-0")], DYNAMIC)
    [kept] = [a for a in other.actions if a.name == "web-0"]
    assert kept.kind == plan_pb2.ACTION_KIND_KEEP
    assert kept.reason.startswith("fleet instance the orchestrator assigned to this host")


def test_a_persistent_service_is_still_called_one(parts: AgentParts) -> None:
    parts.provisioner.apply([instance("keeper")], PERSISTENT)

    refused = parts.provisioner.plan([instance("keeper")], DYNAMIC)

    [refusal] = refused.refusals
    assert "is a persistent service" in refusal.message
    [kept] = [a for a in parts.provisioner.plan([], DYNAMIC).actions if a.name == "keeper"]
    assert kept.reason == "persistent service: updates never change it"
