"""The link against a recording orchestrator on loopback gRPC, with the agent's real
provisioner and reconciler over an in-memory runtime."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from ozwald.agent.v1 import footprint_pb2, service_status_pb2

from ozwald_agent.fleet.config import LinkTiming
from ozwald_agent.fleet.link import FleetLink
from tests.support.recording_orchestrator import RecordingOrchestrator, Session, serve
from tests.unit.agent.fleet.agent_parts import AgentParts, agent_parts, instance

S = service_status_pb2
FAST = LinkTiming(
    profile_s=0.3,
    footprint_poll_s=0.1,
    register_timeout_s=0.5,
    reconnect_first_s=0.05,
    reconnect_max_s=0.2,
)


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[AgentParts]:
    made = agent_parts(tmp_path)
    made.provisioner.start()
    yield made
    made.close()


class Harness:
    def __init__(self, parts: AgentParts, orchestrator: RecordingOrchestrator) -> None:
        self.parts = parts
        self.orchestrator = orchestrator
        self.server, self.port = serve(orchestrator)
        address = f"127.0.0.1:{self.port}"
        self.link = FleetLink(
            address=address,
            host_id="host-a",
            labels={"zone": "z1"},
            open_channel=lambda: grpc.insecure_channel(address),
            provisioner=parts.provisioner,
            footprints=parts.footprints,
            versions=parts.store,
            collect_profile=lambda: parts.profile,
            timing=FAST,
        )

    def restart_server(self, orchestrator: RecordingOrchestrator) -> None:
        self.server.stop(0).wait()
        self.orchestrator = orchestrator
        self.server, port = serve(orchestrator, port=self.port)
        assert port == self.port

    def close(self) -> None:
        self.link.stop()
        self.server.stop(0).wait()


@pytest.fixture
def harness(parts: AgentParts) -> Iterator[Harness]:
    made = Harness(parts, RecordingOrchestrator(heartbeat_interval_s=0.05))
    made.link.start()
    yield made
    made.close()


def _status_in(session: Session, name: str, state: int) -> S.InstanceStatus | None:
    for request in session.of_kind("instances"):
        for status in request.instances.instances:
            if status.name == name and status.state == state:
                return status
    return None


def test_registration_names_the_host_and_heartbeats_follow(harness: Harness) -> None:
    session = harness.orchestrator.wait_session(1)
    register = session.register

    assert register.host_id == "host-a"
    assert dict(register.labels) == {"zone": "z1"}
    assert register.applied_assignment_version == 0
    assert register.profile.hostname == harness.parts.profile.hostname
    assert list(register.instances) == []
    harness.orchestrator.wait_for(lambda _: len(session.of_kind("heartbeat")) >= 3)
    sequences = [r.heartbeat.sequence for r in session.of_kind("heartbeat")]
    assert sequences[:3] == [1, 2, 3]
    assert harness.link.wait_joined(5)


def test_an_assignment_is_admitted_run_and_reported_ready(harness: Harness) -> None:
    orchestrator = harness.orchestrator
    session = orchestrator.wait_session(1)

    orchestrator.assign(1, [instance("web-0")], session)

    result = orchestrator.wait_result(session, 1)
    assert result.admitted, result
    ready = orchestrator.wait_for(
        lambda _: _status_in(session, "web-0", S.INSTANCE_STATE_READY), what="web-0 READY"
    )
    assert isinstance(ready, S.InstanceStatus) and ready.container_id
    assert harness.parts.store.fleet_assignment()[0] == 1


def test_a_new_orchestrator_session_resumes_without_doing_anything_twice(
    harness: Harness,
) -> None:
    first = harness.orchestrator.wait_session(1)
    harness.orchestrator.assign(5, [instance("web-0")], first)
    harness.orchestrator.wait_for(lambda _: _status_in(first, "web-0", S.INSTANCE_STATE_READY))
    created = harness.parts.runtime.created

    restarted = RecordingOrchestrator(heartbeat_interval_s=0.05)
    harness.restart_server(restarted)
    second = restarted.wait_session(1)

    assert second.register.applied_assignment_version == 5
    assert [(s.name, s.state) for s in second.register.instances] == [
        ("web-0", S.INSTANCE_STATE_READY)
    ]
    restarted.assign(5, [instance("web-0")], second)
    assert restarted.wait_result(second, 5).admitted
    restarted.wait_for(lambda _: len(second.of_kind("heartbeat")) >= 5)
    assert harness.parts.runtime.created == created
    assert len(harness.parts.runtime.containers) == 1


def test_an_empty_assignment_stops_the_instance_and_reports_it_removed(
    harness: Harness,
) -> None:
    orchestrator = harness.orchestrator
    session = orchestrator.wait_session(1)
    orchestrator.assign(1, [instance("web-0")], session)
    orchestrator.wait_for(lambda _: _status_in(session, "web-0", S.INSTANCE_STATE_READY))

    orchestrator.assign(2, [], session)

    assert orchestrator.wait_result(session, 2).admitted
    orchestrator.wait_for(
        lambda _: any("web-0" in r.instances.removed for r in session.of_kind("instances")),
        what="web-0 removed",
    )
    assert harness.parts.runtime.containers == {}


def test_many_changes_at_once_go_up_in_few_reports(harness: Harness) -> None:
    orchestrator = harness.orchestrator
    session = orchestrator.wait_session(1)
    names = [f"web-{i}" for i in range(12)]

    orchestrator.assign(1, [instance(n, cpus=0.1, memory_gib=0.1) for n in names], session)

    orchestrator.wait_for(
        lambda _: all(_status_in(session, n, S.INSTANCE_STATE_READY) for n in names),
        what="all READY",
    )
    # Each instance goes through four states (48 changes); batching sends far fewer.
    reports = session.of_kind("instances")
    assert len(reports) < 16, len(reports)


def test_profiles_and_new_footprints_are_sent(harness: Harness) -> None:
    orchestrator = harness.orchestrator
    session = orchestrator.wait_session(1)
    footprint = footprint_pb2.Footprint(
        realm="fleet", service="web", fingerprint="f", peak_memory_bytes=123
    )
    footprint.measured_at.GetCurrentTime()

    harness.parts.footprints.record(footprint)

    orchestrator.wait_for(lambda _: session.of_kind("footprints"), what="FootprintReport")
    (report,) = session.of_kind("footprints")
    assert list(report.footprints.footprints) == [footprint]
    orchestrator.wait_for(lambda _: session.of_kind("profile"), what="ProfileReport")


def test_stopping_the_link_ends_the_stream_and_leaves_the_containers(
    harness: Harness,
) -> None:
    session = harness.orchestrator.wait_session(1)
    harness.orchestrator.assign(1, [instance("web-0")], session)
    harness.orchestrator.wait_for(lambda _: _status_in(session, "web-0", S.INSTANCE_STATE_READY))

    harness.link.stop()

    assert session.ended.wait(5)
    assert len(harness.parts.runtime.containers) == 1
    assert not harness.link.joined


def test_a_register_left_unanswered_is_given_up_and_tried_again(parts: AgentParts) -> None:
    silent = RecordingOrchestrator(answer_register=False)
    made = Harness(parts, silent)
    made.link.start()
    try:
        silent.wait_session(2, timeout=10)
        assert not made.link.joined
    finally:
        made.close()


def test_an_unreachable_orchestrator_is_logged_once_while_retrying(
    parts: AgentParts, caplog: pytest.LogCaptureFixture
) -> None:
    made = Harness(parts, RecordingOrchestrator(heartbeat_interval_s=0.05))
    made.server.stop(0).wait()
    caplog.set_level(logging.DEBUG, logger="ozwald_agent.fleet.link")
    made.link.start()
    try:
        made.orchestrator.wait_for(lambda _: made.link._backoff.failures >= 5, timeout=10)
        later = RecordingOrchestrator(heartbeat_interval_s=0.05)
        made.restart_server(later)
        later.wait_session(1)
        assert made.link.wait_joined(5)
    finally:
        made.close()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "cannot join the orchestrator" in warnings[0].getMessage()
    joined = [r.getMessage() for r in caplog.records if "joined the orchestrator" in r.getMessage()]
    assert joined and "again after" in joined[-1]


def test_an_orchestrator_restart_is_logged_once_and_the_link_comes_back(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    harness.orchestrator.wait_session(1)
    # Joined means Registered arrived: a server stopped before that is a join that failed.
    assert harness.link.wait_joined(5)
    caplog.set_level(logging.DEBUG, logger="ozwald_agent.fleet.link")
    harness.server.stop(0).wait()
    harness.orchestrator.wait_for(lambda _: harness.link._backoff.failures >= 4, timeout=10)

    harness.restart_server(RecordingOrchestrator(heartbeat_interval_s=0.05))

    harness.orchestrator.wait_session(1)
    assert harness.link.wait_joined(5)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("lost the orchestrator at")
