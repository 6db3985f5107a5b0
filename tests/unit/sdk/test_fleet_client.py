"""FleetClient against a real in-process FleetService: errors (code and reason) cross the
wire and become the right exceptions, retries and deadlines, the resumable event watch,
and mutual TLS with certificates from ozwald_sdk.ca."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from ozwald.common.v1.error_reason_pb2 import (
    ERROR_REASON_DEPLOYMENT_INVALID,
    ERROR_REASON_HOST_IDENTITY_MISMATCH,
)
from ozwald.common.v1.service_spec_pb2 import ServiceSpec
from ozwald.orchestrator.v1 import deployment_pb2, placement_pb2
from ozwald.orchestrator.v1 import fleet_state_pb2 as FS

from ozwald_sdk import ca
from ozwald_sdk.errors import (
    ConnectionConfigError,
    DeploymentInvalidError,
    DeploymentNotFoundError,
    ExitCode,
    HostIdentityMismatchError,
    OrchestratorUnreachableError,
    PermissionDeniedError,
)
from ozwald_sdk.orchestrator_client import FleetClient
from ozwald_sdk.paths import default_orchestrator_socket
from ozwald_sdk.retry import RetryPolicy
from ozwald_sdk.target import TlsFiles, resolve_orchestrator_target
from ozwald_sdk.testing import Failure, ServerTls
from tests.unit.cli.fleet_fake import NO_HOST_REASON, FleetFake, serve_fleet

FAST_RETRY = RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.05)


def embed(replicas: int = 2, *, name: str = "embed") -> deployment_pb2.Deployment:
    return deployment_pb2.Deployment(
        name=name,
        realm="default",
        service="embed",
        replicas=replicas,
        candidates=[ServiceSpec(realm="default", name=name, variety="cpu", image="ozwald/embed:1")],
    )


@pytest.fixture
def fake() -> FleetFake:
    return FleetFake()


@pytest.fixture
def address(fake: FleetFake) -> Iterator[str]:
    with serve_fleet(fake) as address:
        yield address


@pytest.fixture
def client(address: str) -> Iterator[FleetClient]:
    with FleetClient(address, timeout=5, retry=FAST_RETRY) as client:
        yield client


def test_apply_then_read_back_with_the_correlation_id_and_deadline_on_every_call(
    client: FleetClient, fake: FleetFake
) -> None:
    plan = client.plan_deployments([embed()], realms=["default"])
    assert fake.deployments == {}, "a plan stores nothing"
    assert [(p.instance, p.reason) for p in plan.changes[0].instances] == [
        ("embed-0", NO_HOST_REASON),
        ("embed-1", NO_HOST_REASON),
    ]

    applied = client.apply_deployments([embed()], realms=["default"])
    listed = client.list_deployments()
    one = client.get_deployment("embed")
    pending = client.list_instances(deployment="embed")

    assert applied.plan.changes[0].kind == placement_pb2.DEPLOYMENT_CHANGE_KIND_CREATE
    assert applied.plan.desired_version == 1
    assert [d.name for d in listed.deployments] == ["embed"]
    assert one.deployment.version == 1
    assert [i.state for i in pending] == [FS.INSTANCE_STATE_PENDING] * 2
    calls = [
        fake.calls_to(m)[0]
        for m in ("PlanDeployments", "ApplyDeployments", "ListDeployments", "GetDeployment")
    ]
    assert {c.correlation_id for c in calls} == {client.correlation_id}
    # The server sees the deadline (a little above the timeout: gRPC rounds it up).
    assert all(c.time_remaining is not None and 0 < c.time_remaining <= 5.5 for c in calls)
    assert list(fake.calls_to("ApplyDeployments")[0].request.realms) == ["default"]


def test_a_refused_deployment_raises_deployment_invalid_with_exit_code_18(
    client: FleetClient, fake: FleetFake
) -> None:
    without_candidates = deployment_pb2.Deployment(name="broken", realm="default", replicas=1)

    with pytest.raises(DeploymentInvalidError) as raised:
        client.apply_deployments([embed(), without_candidates])

    error = raised.value
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.reason == "DEPLOYMENT_INVALID"
    assert error.deployment == "broken"
    assert "no candidate spec" in error.message
    assert error.remedy
    assert error.exit_code == ExitCode.DEPLOYMENT_INVALID
    assert int(error.exit_code) == 18
    assert fake.deployments == {}, "nothing is stored when one deployment is refused"
    assert len(fake.calls_to("ApplyDeployments")) == 1, "INVALID_ARGUMENT is never retried"


def test_an_unknown_deployment_raises_deployment_not_found_with_exit_code_19(
    client: FleetClient, fake: FleetFake
) -> None:
    with pytest.raises(DeploymentNotFoundError) as raised:
        client.explain_deployment("nope")

    assert raised.value.code == grpc.StatusCode.NOT_FOUND
    assert raised.value.reason == "DEPLOYMENT_NOT_FOUND"
    assert raised.value.deployment == "nope"
    assert raised.value.exit_code == ExitCode.DEPLOYMENT_NOT_FOUND
    assert int(raised.value.exit_code) == 19
    assert len(fake.calls_to("ExplainDeployment")) == 1


def test_a_host_identity_mismatch_is_a_permission_error(
    client: FleetClient, fake: FleetFake
) -> None:
    fake.fail_next(
        Failure(
            grpc.StatusCode.PERMISSION_DENIED,
            "certificate names h1, Register says h2",
            reason=ERROR_REASON_HOST_IDENTITY_MISMATCH,
            remedy="issue the agent a certificate for its host id",
        )
    )

    with pytest.raises(HostIdentityMismatchError) as raised:
        client.list_hosts()

    assert isinstance(raised.value, PermissionDeniedError)
    assert raised.value.exit_code == ExitCode.PERMISSION_DENIED
    assert raised.value.remedy == "issue the agent a certificate for its host id"


def test_the_specific_class_needs_the_reason_and_the_code(
    client: FleetClient, fake: FleetFake
) -> None:
    # DEPLOYMENT_INVALID with another code than INVALID_ARGUMENT is not trusted as such.
    fake.fail_next(
        Failure(
            grpc.StatusCode.FAILED_PRECONDITION,
            "odd",
            reason=ERROR_REASON_DEPLOYMENT_INVALID,
        )
    )

    with pytest.raises(Exception) as raised:
        client.list_deployments()

    assert not isinstance(raised.value, DeploymentInvalidError)


def test_unavailable_is_retried_within_the_deadline(client: FleetClient, fake: FleetFake) -> None:
    fake.fail_next(Failure(grpc.StatusCode.UNAVAILABLE, "restarting"), times=2)

    assert client.list_hosts() == []

    assert len(fake.calls_to("ListHosts")) == 3


def test_no_orchestrator_fails_at_once_saying_how_to_start_one(tmp_path: Path) -> None:
    missing = tmp_path / "orchestrator.sock"

    with (
        FleetClient(str(missing), timeout=5) as client,
        pytest.raises(OrchestratorUnreachableError) as raised,
    ):
        client.list_hosts()

    assert str(missing) in raised.value.message
    assert "orchestrator" in raised.value.message
    assert "ozwald-orchestrator" in raised.value.remedy
    assert "--orchestrator" in raised.value.remedy
    assert raised.value.exit_code == ExitCode.AGENT_UNREACHABLE


def test_the_address_comes_from_the_environment_then_the_default_socket() -> None:
    assert resolve_orchestrator_target(environ={}).socket_path == default_orchestrator_socket()
    assert default_orchestrator_socket().name == "orchestrator.sock"
    from_env = resolve_orchestrator_target(environ={"OZWALD_ORCHESTRATOR": "/srv/o.sock"})
    assert from_env.socket_path == Path("/srv/o.sock")
    # The agent's variable does not point the fleet commands anywhere.
    other = resolve_orchestrator_target(environ={"OZWALD_AGENT": "/srv/agent.sock"})
    assert other.socket_path == default_orchestrator_socket()


def test_the_event_watch_resumes_after_a_broken_stream_without_gaps_or_repeats() -> None:
    fake = FleetFake(break_watch_after=2)
    for n in range(5):
        fake.emit("instance-placed", f"event {n + 1}", deployment="embed")
    with serve_fleet(fake) as address, FleetClient(address, timeout=5, retry=FAST_RETRY) as client:
        events = list(client.watch_events(follow=False))

    assert [e.sequence for e in events] == [1, 2, 3, 4, 5]
    assert [c.request.after_sequence for c in fake.calls_to("WatchEvents")] == [0, 2, 4]
    assert all(c.request.stored_only for c in fake.calls_to("WatchEvents"))


def test_following_events_sees_live_ones_after_the_stored_ones(
    client: FleetClient, fake: FleetFake
) -> None:
    fake.emit("host-joined", "h1 joined", host_id="h1")
    seen = []
    for event in client.watch_events(after_sequence=0, follow=True, timeout=5):
        seen.append(event.kind)
        if len(seen) == 1:
            fake.emit("host-ready", "h1 is ready", host_id="h1")
        if len(seen) == 2:
            break

    assert seen == ["host-joined", "host-ready"]
    assert not fake.calls_to("WatchEvents")[0].request.stored_only


def test_operator_certificates_from_the_ca_work_over_mutual_tls(tmp_path: Path) -> None:
    ca.init_ca(tmp_path / "ca")
    server = ca.issue(tmp_path / "ca", "orchestrator", "orch")
    operator = ca.issue(tmp_path / "ca", "operator", "alice")
    fake = FleetFake()
    fake.add_host(FS.Host(id="h1", state=FS.HOST_STATE_READY))
    tls = ServerTls(
        cert=server.cert.read_bytes(),
        key=server.key.read_bytes(),
        client_ca=server.ca_cert.read_bytes(),
    )
    with serve_fleet(fake, tls=tls) as address:
        target = resolve_orchestrator_target(
            address,
            tls_ca=operator.ca_cert,
            tls_cert=operator.cert,
            tls_key=operator.key,
            environ={},
        )
        assert target.tls == TlsFiles(ca=operator.ca_cert, cert=operator.cert, key=operator.key)
        with FleetClient(target, timeout=5) as client:
            assert [h.id for h in client.list_hosts()] == ["h1"]


def test_tcp_without_tls_is_refused_before_any_call_naming_the_orchestrator() -> None:
    with pytest.raises(ConnectionConfigError) as raised:
        resolve_orchestrator_target("10.0.0.7:7443", environ={})

    assert raised.value.message.startswith(
        "cannot reach the orchestrator at 10.0.0.7:7443 over TCP without TLS"
    )
    assert "--tls-ca (OZWALD_TLS_CA)" in raised.value.message
    assert raised.value.exit_code == ExitCode.CONNECTION_CONFIG
