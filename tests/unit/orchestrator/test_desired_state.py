"""An apply replaces its realms' deployment sets; the same set twice changes nothing."""

from __future__ import annotations

import grpc
import pytest
from ozwald.orchestrator.v1 import deployment_pb2

from ozwald_orchestrator.desired_state import CREATE, DELETE, UNCHANGED, UPDATE, compare
from ozwald_orchestrator.rpc_errors import OrchestratorError
from tests.unit.orchestrator.fakes import EPOCH, deployment


def _stored(*deployments: deployment_pb2.Deployment) -> dict[str, deployment_pb2.Deployment]:
    for d in deployments:
        d.version = 1
    return {d.name: d for d in deployments}


def test_create_update_delete_and_unchanged() -> None:
    current = _stored(deployment("web", 1), deployment("db", 1), deployment("old", 1))
    change = compare(
        current,
        {"web": 1, "db": 1, "old": 1},
        [deployment("web", 1), deployment("db", 2), deployment("new", 1)],
        [],
        EPOCH,
    )
    kinds = {c.deployment: c.kind for c in change.changes}
    assert kinds == {"web": UNCHANGED, "db": UPDATE, "old": DELETE, "new": CREATE}
    assert [c.changed_fields for c in change.changes if c.deployment == "db"] == [["replicas"]]
    assert {d.name: d.version for d in change.upserts} == {"db": 2, "new": 1}
    assert [(r.name, r.version) for r in change.removed] == [("old", 2)]
    assert sorted(change.deployments) == ["db", "new", "web"]
    assert change.summary() == "update db; create new; delete old"


def test_applying_the_same_set_again_changes_nothing() -> None:
    current = _stored(deployment("web", 2))
    change = compare(current, {"web": 1}, [deployment("web", 2)], [], EPOCH)
    assert not change.changed


def test_other_realms_are_untouched_and_a_named_realm_can_be_emptied() -> None:
    current = _stored(deployment("web", realm="a"), deployment("db", realm="b"))
    change = compare(current, {}, [], ["a"], EPOCH)
    assert [(c.deployment, c.kind) for c in change.changes] == [("web", DELETE)]
    assert sorted(change.deployments) == ["db"]


def test_a_name_taken_in_another_realm_is_refused() -> None:
    current = _stored(deployment("web", realm="a"))
    with pytest.raises(OrchestratorError) as refused:
        compare(current, {}, [deployment("web", realm="b")], [], EPOCH)
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "realm 'a'" in refused.value.message


def test_a_deployment_created_again_continues_its_versions() -> None:
    change = compare({}, {"web": 4}, [deployment("web")], [], EPOCH)
    assert [d.version for d in change.upserts] == [5]
