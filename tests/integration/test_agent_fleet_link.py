"""A real ozwald-agent joining a small in-test orchestrator over mutual TLS, running what
it is assigned on the real Docker Engine, and resuming after either side restarts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import grpc
import pytest
from docker.models.containers import Container
from google.protobuf.duration_pb2 import Duration
from ozwald.agent.v1 import service_status_pb2
from ozwald.common.v1 import service_spec_pb2 as spec_pb2

from ozwald_sdk.testing import ServerTls
from tests.integration.agent_process import RunningAgent, start_agent
from tests.support.certificates import Authority
from tests.support.recording_orchestrator import RecordingOrchestrator, Session, serve

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("tiny_image")]

S = service_status_pb2
HOST_ID = "host-a"
PREFIX = "ozwald-h1"
TIB = 1 << 40


@dataclass
class Fleet:
    """An orchestrator on 127.0.0.1:port (replaceable), and the CA of its fleet."""

    authority: Authority
    workdir: Path
    tls: ServerTls
    server: grpc.Server
    port: int
    orchestrator: RecordingOrchestrator

    @property
    def join_args(self) -> list[str]:
        return self.join(HOST_ID, PREFIX, "--host-label", "zone=z1", "--host-label", "rack=r7")

    def join(self, host_id: str, prefix: str, *extra: str) -> list[str]:
        """`ozwald-agent` arguments joining as `host_id` (a fresh agent certificate)."""
        ca = self.authority.write_pem(self.workdir / "ca.pem")
        cert, key = self.authority.issue(host_id, server=False, unit="agent").write(
            self.workdir, host_id
        )
        return [
            "--orchestrator",
            f"127.0.0.1:{self.port}",
            "--fleet-ca",
            str(ca),
            "--fleet-cert",
            str(cert),
            "--fleet-key",
            str(key),
            "--container-prefix",
            prefix,
            *extra,
        ]

    def restart_orchestrator(self) -> RecordingOrchestrator:
        self.server.stop(0).wait()
        self.orchestrator = RecordingOrchestrator(heartbeat_interval_s=0.2)
        self.server, port = serve(self.orchestrator, port=self.port, tls=self.tls)
        assert port == self.port
        return self.orchestrator


@pytest.fixture
def fleet(workdir: Path) -> Iterator[Fleet]:
    authority = Authority("fleet CA")
    orchestrator_cert = authority.issue("ozwald-orchestrator", server=True)
    tls = ServerTls(cert=orchestrator_cert.cert, key=orchestrator_cert.key, client_ca=authority.pem)
    orchestrator = RecordingOrchestrator(heartbeat_interval_s=0.2)
    server, port = serve(orchestrator, tls=tls)
    made = Fleet(authority, workdir, tls, server, port, orchestrator)
    yield made
    made.server.stop(0).wait()


@pytest.fixture
def joined(workdir: Path, fleet: Fleet) -> Iterator[RunningAgent]:
    agent = start_agent(workdir, fleet.join_args)
    yield agent
    code = agent.terminate()
    assert code == 0, f"agent exited with {code} on SIGTERM:\n{agent.logs()}"


def _echo(realm: str, name: str, memory: int = 32 << 20) -> spec_pb2.ServiceSpec:
    interval = Duration()
    interval.FromMilliseconds(500)
    return spec_pb2.ServiceSpec(
        realm=realm,
        name=name,
        image="ozwald/tiny:local",
        connector_port=8080,
        health_check=spec_pb2.HealthCheck(
            http=spec_pb2.HttpProbe(path="/healthz"), interval=interval
        ),
        resources=spec_pb2.ResourceRequirements(memory_bytes=memory, cpus=0.25),
    )


def _containers(realm: str) -> list[Container]:
    return list(
        docker.from_env().containers.list(
            all=True, ignore_removed=True, filters={"label": f"ozwald.realm={realm}"}
        )
    )


def _ready(session: Session, name: str) -> S.InstanceStatus | None:
    for request in session.of_kind("instances"):
        for status in request.instances.instances:
            if status.name == name and status.state == S.INSTANCE_STATE_READY:
                return status
    return None


def _wait_ready(
    orchestrator: RecordingOrchestrator, session: Session, name: str
) -> S.InstanceStatus:
    found = orchestrator.wait_for(lambda _: _ready(session, name), timeout=60, what=f"{name} READY")
    assert isinstance(found, S.InstanceStatus)
    return found


# `realm` comes first in each test's fixtures so that its cleanup runs after the agent
# stopped: a running agent would recreate what the cleanup removes.


def test_the_agent_joins_runs_its_assignment_and_resumes_after_restarts(
    realm: str, workdir: Path, fleet: Fleet, joined: RunningAgent
) -> None:
    first = fleet.orchestrator.wait_session(1)
    register = first.register
    assert first.peer_common_name == HOST_ID
    assert register.host_id == HOST_ID
    assert dict(register.labels) == {"zone": "z1", "rack": "r7"}
    assert register.applied_assignment_version == 0
    assert register.profile.memory.total_bytes > 0

    fleet.orchestrator.assign(1, [_echo(realm, "echo-0")], first)

    result = fleet.orchestrator.wait_result(first, 1)
    assert result.admitted, result
    ready = _wait_ready(fleet.orchestrator, first, "echo-0")
    (container,) = _containers(realm)
    assert container.name == f"{PREFIX}-{realm}-echo-0"
    assert container.status == "running"
    assert ready.container_id == container.id

    # The orchestrator restarts: the agent comes back on its own and says what it runs.
    orchestrator = fleet.restart_orchestrator()
    second = orchestrator.wait_session(1, timeout=30)
    assert second.register.applied_assignment_version == 1
    assert [(s.name, s.state, s.container_id) for s in second.register.instances] == [
        ("echo-0", S.INSTANCE_STATE_READY, container.id)
    ]
    orchestrator.assign(1, [_echo(realm, "echo-0")], second)
    assert orchestrator.wait_result(second, 1).admitted
    time.sleep(1.0)
    assert [c.id for c in _containers(realm)] == [container.id]

    # The agent restarts: the container keeps running meanwhile and is adopted.
    assert joined.terminate() == 0
    assert docker.from_env().containers.get(container.id).status == "running"
    orchestrator.wait_for(lambda _: second.ended.is_set(), what="the stream to end")
    restarted = start_agent(workdir, joined.extra_args, state_dir=joined.state_dir)
    try:
        _resume_and_empty(orchestrator, container.id, realm)
    finally:
        code = restarted.terminate()
    assert code == 0, restarted.logs()


def _resume_and_empty(orchestrator: RecordingOrchestrator, container_id: str, realm: str) -> None:
    third = orchestrator.wait_session(2, timeout=30)
    assert third.register.applied_assignment_version == 1
    assert [(s.name, s.state, s.container_id) for s in third.register.instances] == [
        ("echo-0", S.INSTANCE_STATE_READY, container_id)
    ]
    orchestrator.assign(1, [_echo(realm, "echo-0")], third)
    assert orchestrator.wait_result(third, 1).admitted
    time.sleep(1.0)
    assert [c.id for c in _containers(realm)] == [container_id]
    assert docker.from_env().containers.get(container_id).status == "running"

    # An empty assignment stops it.
    orchestrator.assign(2, [], third)
    assert orchestrator.wait_result(third, 2).admitted
    orchestrator.wait_for(
        lambda _: any("echo-0" in r.instances.removed for r in third.of_kind("instances")),
        timeout=30,
        what="echo-0 removed",
    )
    assert _containers(realm) == []


def test_an_assignment_beyond_the_host_is_refused_with_the_plan(
    realm: str, fleet: Fleet, joined: RunningAgent
) -> None:
    session = fleet.orchestrator.wait_session(1)

    fleet.orchestrator.assign(
        1, [_echo(realm, "small-0"), _echo(realm, "huge-0", memory=64 * TIB)], session
    )

    result = fleet.orchestrator.wait_result(session, 1)
    assert not result.admitted
    assert [r.name for r in result.plan.refusals] == ["huge-0"]
    assert "memory" in result.plan.refusals[0].message
    # Atomic: the one that fits was not started either.
    time.sleep(1.0)
    assert _containers(realm) == []


def test_agents_sharing_one_engine_keep_their_containers_apart(
    realm: str, workdir: Path, fleet: Fleet
) -> None:
    hosts = {"host-b": "ozwald-hb", "host-c": "ozwald-hc"}
    agents = []
    for host, prefix in hosts.items():
        (workdir / host).mkdir()
        agents.append(
            start_agent(workdir / host, fleet.join(host, prefix), socket=workdir / f"{host}.sock")
        )
    try:
        sessions = {}
        for number in (1, 2):
            session = fleet.orchestrator.wait_session(number)
            sessions[session.register.host_id] = session
        assert set(sessions) == set(hosts)
        for session in sessions.values():
            # The same realm and instance name on both hosts.
            fleet.orchestrator.assign(1, [_echo(realm, "echo-0")], session)
        for session in sessions.values():
            assert fleet.orchestrator.wait_result(session, 1).admitted
            _wait_ready(fleet.orchestrator, session, "echo-0")
        names = sorted(str(c.name) for c in _containers(realm))
        assert names == [f"{prefix}-{realm}-echo-0" for prefix in sorted(hosts.values())]
        networks = docker.from_env().networks.list(filters={"label": f"ozwald.realm={realm}"})
        assert sorted(str(n.name) for n in networks) == [
            f"{p}-{realm}" for p in sorted(hosts.values())
        ]

        # One host's assignment empties: only its own container goes.
        fleet.orchestrator.assign(2, [], sessions["host-b"])
        assert fleet.orchestrator.wait_result(sessions["host-b"], 2).admitted
        fleet.orchestrator.wait_for(
            lambda _: [c.name for c in _containers(realm)] == [f"ozwald-hc-{realm}-echo-0"],
            timeout=30,
            what="only host-c's container left",
        )
    finally:
        codes = [agent.terminate() for agent in agents]
    assert codes == [0, 0]
