"""The diff: start what is new, keep what is equal, restart what changed, stop the rest."""

from __future__ import annotations

from ozwald.agent.v1 import plan_pb2

from ozwald_agent.admission import RunningService
from tests.unit.admission.builders import (
    GB,
    action,
    devices,
    host,
    kinds,
    make_plan,
    reasons,
    running,
    service,
)


def test_new_services_start() -> None:
    result = make_plan([service("a"), service("b")])

    assert kinds(result) == {"a": "START", "b": "START"}
    assert action(result, "a").reason == "new service"
    assert action(result, "a").running_fingerprint == ""
    assert len(action(result, "a").fingerprint) == 64


def test_replanning_the_same_set_keeps_everything() -> None:
    desired = [service("a"), service("b", memory=GB)]

    result = make_plan(desired, [running(s) for s in desired])

    assert result.admitted
    assert kinds(result) == {"a": "KEEP", "b": "KEEP"}
    assert action(result, "a").reason == "unchanged"
    assert not result.start_order and not result.stop_order


def test_changing_one_services_profile_restarts_only_that_service() -> None:
    before = [service("a", profile="short", command=["--ctx", "4096"]), service("b")]
    after = [service("a", profile="long", command=["--ctx", "32768"]), service("b")]

    result = make_plan(after, [running(s) for s in before])

    assert kinds(result) == {"a": "RESTART", "b": "KEEP"}
    restart = action(result, "a")
    assert list(restart.changed_fields) == ["profile", "command"]
    assert restart.reason == "effective spec changed: profile, command"
    assert restart.fingerprint != restart.running_fingerprint
    assert restart.spec == after[0]
    assert [r.name for r in result.stop_order] == ["a"]
    assert [r.name for r in result.start_order] == ["a"]


def test_a_changed_environment_names_the_field_never_the_values() -> None:
    before = service("a", environment={"HF_TOKEN": "hf_old_secret"})
    after = service("a", environment={"HF_TOKEN": "hf_new_secret"})

    result = make_plan([after], [running(before)])

    assert action(result, "a").reason == "effective spec changed: environment"
    assert "secret" not in str(result.actions[0].reason)


def test_running_services_left_out_of_the_desired_set_stop_and_give_back_their_gpus() -> None:
    h100 = host("nvidia_h100_x1.json")
    gone = service("gone", gpus=1, vram=20 * GB, memory=8 * GB)

    result = make_plan([service("stays")], [running(gone, devices(h100)[0].uuid)], on=h100)

    stop = action(result, "gone")
    assert stop.kind == plan_pb2.ACTION_KIND_STOP
    assert stop.reason == "no longer desired"
    assert not stop.HasField("spec")
    assert stop.resources.memory.accounted_bytes == 8 * GB
    assert [d.uuid for d in stop.gpus.devices] == [devices(h100)[0].uuid]
    assert stop.gpus.devices[0].reserved_bytes == 20 * GB
    assert not result.budget.gpus[0].holders


def test_persistent_services_are_kept_whatever_the_desired_set_says() -> None:
    db = service("db", memory=GB)

    empty = make_plan([], [running(db, persistent=True)])
    named = make_plan([service("db", image="other:1")], [running(db, persistent=True)])

    assert kinds(empty) == {"db": "KEEP"}
    kept = action(empty, "db")
    assert kept.persistent and kept.spec == db
    assert kept.reason == "persistent service: updates never change it"
    assert empty.admitted
    assert reasons(named) == [("db", "PERSISTENT_SERVICE")]
    assert kinds(named) == {"db": "KEEP"}
    assert action(named, "db").spec == db


def test_a_fingerprint_recorded_by_another_scheme_restarts_and_says_why() -> None:
    spec = service("a")
    stale = RunningService("default", "a", spec, fingerprint="sha256-of-something-else")

    result = make_plan([spec], [stale])

    assert kinds(result) == {"a": "RESTART"}
    assert "no field of the spec differs" in action(result, "a").reason


def test_a_service_moved_to_another_realm_is_a_stop_and_a_start() -> None:
    result = make_plan([service("a", realm="new")], [running(service("a", realm="old"))])

    assert [(a.realm, a.kind) for a in result.actions] == [
        ("new", plan_pb2.ACTION_KIND_START),
        ("old", plan_pb2.ACTION_KIND_STOP),
    ]
