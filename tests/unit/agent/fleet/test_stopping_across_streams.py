"""A fleet instance still stopping when the agent's stream reopens is in the new
Register, and its STOPPED reaches the orchestrator on the new stream as removed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from ozwald.agent.v1 import service_status_pb2

from ozwald_agent.runtime.container_info import StopResult
from tests.support.recording_orchestrator import RecordingOrchestrator, Session
from tests.unit.agent.fleet.agent_parts import AgentParts, agent_parts, instance
from tests.unit.agent.fleet.test_link import Harness
from tests.unit.provisioning.memory_runtime import MemoryRuntime

S = service_status_pb2


class SlowStop(MemoryRuntime):
    """Stopping a container takes until the test says `release`."""

    def __init__(self) -> None:
        super().__init__()
        self.released = threading.Event()
        self.stopping = threading.Event()

    def stop(self, container: str, *, timeout_s: float = 10.0) -> StopResult:
        self.stopping.set()
        assert self.released.wait(20), "the test never released the stop"
        return super().stop(container, timeout_s=timeout_s)


@pytest.fixture
def slow() -> SlowStop:
    return SlowStop()


@pytest.fixture
def parts(tmp_path: Path, slow: SlowStop) -> Iterator[AgentParts]:
    made = agent_parts(tmp_path, runtime=slow)
    made.provisioner.start()
    yield made
    slow.released.set()
    made.close()


def _states(session: Session, name: str) -> list[int]:
    return [
        status.state
        for request in session.of_kind("instances")
        for status in request.instances.instances
        if status.name == name
    ]


def _removed(session: Session) -> list[str]:
    return [name for r in session.of_kind("instances") for name in r.instances.removed]


def test_an_instance_stopping_across_a_reconnect_is_registered_then_removed(
    parts: AgentParts, slow: SlowStop
) -> None:
    harness = Harness(parts, RecordingOrchestrator(heartbeat_interval_s=0.05))
    harness.link.start()
    try:
        first = harness.orchestrator.wait_session(1)
        harness.orchestrator.assign(1, [instance("web-0")], first)
        harness.orchestrator.wait_for(lambda _: S.INSTANCE_STATE_READY in _states(first, "web-0"))
        harness.orchestrator.assign(2, [], first)
        assert slow.stopping.wait(10)
        harness.orchestrator.wait_for(
            lambda _: S.INSTANCE_STATE_STOPPING in _states(first, "web-0"), what="STOPPING"
        )

        restarted = RecordingOrchestrator(heartbeat_interval_s=0.05)
        harness.restart_server(restarted)
        second = restarted.wait_session(1)
        assert [(s.name, s.state) for s in second.register.instances] == [
            ("web-0", S.INSTANCE_STATE_STOPPING)
        ]

        slow.released.set()
        restarted.wait_for(lambda _: "web-0" in _removed(second), what="web-0 removed")
        assert parts.runtime.containers == {}
    finally:
        harness.close()
