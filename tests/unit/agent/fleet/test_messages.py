"""What the agent sends up: registration, and status changes collapsed per fleet instance."""

from __future__ import annotations

from ozwald.agent.v1 import footprint_pb2, service_status_pb2
from ozwald.common.v1 import host_profile_pb2

from ozwald_agent.fleet import messages

S = service_status_pb2


def _event(
    sequence: int, name: str, state: S.InstanceState.ValueType, realm: str = "fleet"
) -> S.ServiceEvent:
    event = S.ServiceEvent(
        sequence=sequence,
        status=S.InstanceStatus(realm=realm, name=name, state=state, reason=f"step {sequence}"),
    )
    event.time.FromSeconds(1_800_000_000 + sequence)
    return event


def test_register_carries_identity_state_and_footprints() -> None:
    status = S.InstanceStatus(realm="fleet", name="web-0", state=S.INSTANCE_STATE_READY)
    footprint = footprint_pb2.Footprint(realm="fleet", service="web", peak_memory_bytes=5)

    request = messages.register(
        host_id="gpu-01",
        profile=host_profile_pb2.HostProfile(hostname="box"),
        labels={"zone": "a"},
        applied_version=4,
        instances=[status],
        footprints=[footprint],
    )

    register = request.register
    assert register.host_id == "gpu-01"
    assert register.profile.hostname == "box"
    assert dict(register.labels) == {"zone": "a"}
    assert register.applied_assignment_version == 4
    assert list(register.instances) == [status]
    assert list(register.footprints) == [footprint]


def test_changes_are_collapsed_to_each_instances_latest_status() -> None:
    events = [
        _event(1, "web-0", S.INSTANCE_STATE_PENDING),
        _event(2, "web-1", S.INSTANCE_STATE_PENDING),
        _event(3, "web-0", S.INSTANCE_STATE_CREATING),
        _event(4, "web-0", S.INSTANCE_STATE_STARTING),
    ]
    fleet = {("fleet", "web-0"), ("fleet", "web-1")}
    reported: set[messages.ServiceKey] = set()

    changes = messages.fleet_changes(events, fleet, reported)

    report = changes.request().instances
    assert [(s.name, s.state) for s in report.instances] == [
        ("web-1", S.INSTANCE_STATE_PENDING),
        ("web-0", S.INSTANCE_STATE_STARTING),
    ]
    assert report.observed_at.seconds == 1_800_000_001
    assert not report.removed
    assert reported == fleet


def test_services_of_other_scopes_are_left_out() -> None:
    events = [
        _event(1, "local", S.INSTANCE_STATE_READY, realm="default"),
        _event(2, "web-0", S.INSTANCE_STATE_READY),
    ]

    changes = messages.fleet_changes(events, {("fleet", "web-0")}, set())

    assert [s.name for s in changes.request().instances.instances] == ["web-0"]
    assert changes.observed_at is not None and changes.observed_at.seconds == 1_800_000_002


def test_nothing_of_the_fleet_makes_no_report() -> None:
    changes = messages.fleet_changes(
        [_event(1, "local", S.INSTANCE_STATE_READY, realm="default")], set(), set()
    )
    assert not changes


def test_an_instance_that_left_the_set_reports_its_last_steps_then_its_removal() -> None:
    reported = {("fleet", "web-0")}
    stopping = messages.fleet_changes(
        [_event(5, "web-0", S.INSTANCE_STATE_STOPPING)], set(), reported
    )
    assert [s.state for s in stopping.request().instances.instances] == [S.INSTANCE_STATE_STOPPING]

    stopped = messages.fleet_changes(
        [_event(6, "web-0", S.INSTANCE_STATE_STOPPED)], set(), reported
    )

    report = stopped.request().instances
    assert list(report.removed) == ["web-0"]
    assert not report.instances
    assert reported == set()
    # Once removed, later events of that name are no longer the fleet's.
    assert not messages.fleet_changes(
        [_event(7, "web-0", S.INSTANCE_STATE_PENDING)], set(), reported
    )


def test_an_instance_stopped_and_assigned_again_in_one_batch_is_reported_as_running() -> None:
    reported = {("fleet", "web-0")}
    events = [
        _event(1, "web-0", S.INSTANCE_STATE_STOPPED),
        _event(2, "web-0", S.INSTANCE_STATE_PENDING),
    ]

    changes = messages.fleet_changes(events, {("fleet", "web-0")}, reported)

    report = changes.request().instances
    assert [s.state for s in report.instances] == [S.INSTANCE_STATE_PENDING]
    assert not report.removed


def test_only_new_or_remeasured_footprints_are_sent_again() -> None:
    first = footprint_pb2.Footprint(realm="r", service="a", fingerprint="f1")
    first.measured_at.FromSeconds(10)
    other = footprint_pb2.Footprint(realm="r", service="b", fingerprint="f1")
    sent = messages.footprint_stamps([first])

    assert messages.new_footprints([first, other], sent) == [other]
    assert messages.new_footprints([first, other], sent) == []

    remeasured = footprint_pb2.Footprint()
    remeasured.CopyFrom(first)
    remeasured.measured_at.FromSeconds(20)
    assert messages.new_footprints([remeasured, other], sent) == [remeasured]
