"""`ozwald scale`, `ozwald cordon` and `ozwald uncordon` against a real in-process
FleetService: what they send, what people read, the JSON, and the exit codes of refusals."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator

import grpc
import pytest
from ozwald.common.v1.error_reason_pb2 import ERROR_REASON_HOST_NOT_FOUND
from ozwald.orchestrator.v1 import deployment_pb2, placement_pb2
from ozwald.orchestrator.v1 import fleet_service_pb2 as pb
from ozwald.orchestrator.v1 import fleet_state_pb2 as FS

from ozwald_sdk import rpc_status
from ozwald_sdk.cli.main import main
from ozwald_sdk.cli.render_fleet_state import render_hosts
from ozwald_sdk.errors import ExitCode, HostNotFoundError
from ozwald_sdk.orchestrator_client import FleetClient
from tests.unit.cli.fleet_fake import FleetFake, serve_fleet, stamp


class ScalingFleetFake(FleetFake):
    """The CLI fake with scale, cordon and uncordon: replica counts and a cordon flag."""

    def ScaleDeployment(
        self, request: pb.ScaleDeploymentRequest, context: grpc.ServicerContext
    ) -> pb.ScaleDeploymentResponse:
        self._arrive("ScaleDeployment", request, context)
        stored = self._known(request.name, context)
        scaled = deployment_pb2.Deployment()
        scaled.CopyFrom(stored)
        plan = placement_pb2.FleetPlan(desired_version=self.desired_version)
        if scaled.replicas != request.replicas:
            scaled.replicas = request.replicas
            scaled.version += 1
            self.desired_version += 1
            plan.desired_version = self.desired_version
            self.deployments[scaled.name] = scaled
            change = plan.changes.add(
                deployment=scaled.name,
                kind=placement_pb2.DEPLOYMENT_CHANGE_KIND_UPDATE,
                changed_fields=["replicas"],
            )
        else:
            change = plan.changes.add(
                deployment=scaled.name, kind=placement_pb2.DEPLOYMENT_CHANGE_KIND_UNCHANGED
            )
        for ordinal in range(scaled.replicas):
            host = "h1" if ordinal < 2 else ""
            change.instances.add(
                instance=f"{scaled.name}-{ordinal}",
                host_id=host,
                reason="" if host else "cpu rejects 1 host",
            )
        return pb.ScaleDeploymentResponse(deployment=scaled, plan=plan)

    def CordonHost(
        self, request: pb.CordonHostRequest, context: grpc.ServicerContext
    ) -> pb.CordonHostResponse:
        self._arrive("CordonHost", request, context)
        return pb.CordonHostResponse(host=self._flag(request.host_id, True, context))

    def UncordonHost(
        self, request: pb.UncordonHostRequest, context: grpc.ServicerContext
    ) -> pb.UncordonHostResponse:
        self._arrive("UncordonHost", request, context)
        return pb.UncordonHostResponse(host=self._flag(request.host_id, False, context))

    def _flag(self, host_id: str, cordoned: bool, context: grpc.ServicerContext) -> FS.Host:
        for host in self.hosts:
            if host.id == host_id:
                host.cordoned = cordoned
                return host
        rpc_status.abort(
            context,
            grpc.StatusCode.NOT_FOUND,
            ERROR_REASON_HOST_NOT_FOUND,
            f"no host {host_id!r} in the fleet (hosts: h1)",
            "check the host id with `ozwald hosts`",
            host_id=host_id,
        )
        raise AssertionError("abort returned")


@pytest.fixture
def fake() -> ScalingFleetFake:
    fake = ScalingFleetFake()
    fake.deployments["web"] = deployment_pb2.Deployment(
        name="web", realm="default", service="web", replicas=2, version=1
    )
    fake.desired_version = 1
    fake.add_host(FS.Host(id="h1", state=FS.HOST_STATE_READY, connected=True))
    return fake


@pytest.fixture
def address(fake: ScalingFleetFake) -> Iterator[str]:
    with serve_fleet(fake) as address:
        yield address


def _run(capsys: pytest.CaptureFixture[str], address: str, *argv: str) -> tuple[int, str, str]:
    code = main(["--orchestrator", address, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_scale_sends_the_count_and_says_where_instances_go(
    capsys: pytest.CaptureFixture[str], address: str, fake: ScalingFleetFake
) -> None:
    code, out, err = _run(capsys, address, "scale", "web", "3")

    assert code == ExitCode.OK, err
    [call] = fake.calls_to("ScaleDeployment")
    assert (call.request.name, call.request.replicas) == ("web", 3)
    lines = out.splitlines()
    assert lines[0] == (
        "Scaled web from 2 to 3 replica(s): deployment version 2, desired-state version 2."
    )
    assert "web-0  -> h1" in out
    assert "web-2  PENDING: cpu rejects 1 host" in out
    assert "`ozwald explain web` says why" in out
    assert "sets the count back" in out


def test_scale_to_the_same_count_says_nothing_changed(
    capsys: pytest.CaptureFixture[str], address: str
) -> None:
    code, out, _ = _run(capsys, address, "scale", "web", "2")
    assert code == ExitCode.OK
    assert out.splitlines()[0] == "web has 2 replica(s) already: nothing changed."
    assert "replicas:" not in out


def test_scale_json_is_the_response(capsys: pytest.CaptureFixture[str], address: str) -> None:
    code, out, _ = _run(capsys, address, "--json", "scale", "web", "0")
    assert code == ExitCode.OK
    document = json.loads(out)
    assert document["deployment"]["name"] == "web"
    assert document["deployment"]["replicas"] == 0
    assert document["plan"]["changes"][0]["changed_fields"] == ["replicas"]


def test_scale_of_an_unknown_deployment_exits_19(
    capsys: pytest.CaptureFixture[str], address: str
) -> None:
    code, _, err = _run(capsys, address, "scale", "wbe", "3")
    assert code == ExitCode.DEPLOYMENT_NOT_FOUND
    assert "no deployment named 'wbe'" in err


@pytest.mark.parametrize("count", ["-1", "1001", "two"])
def test_scale_refuses_a_count_out_of_range_before_sending(
    capsys: pytest.CaptureFixture[str], address: str, fake: ScalingFleetFake, count: str
) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["--orchestrator", address, "scale", "web", count])
    assert raised.value.code == ExitCode.USAGE
    assert not fake.calls_to("ScaleDeployment")


def test_cordon_and_uncordon_flip_the_flag_and_hosts_shows_it(
    capsys: pytest.CaptureFixture[str], address: str, fake: ScalingFleetFake
) -> None:
    code, out, err = _run(capsys, address, "cordon", "h1")
    assert code == ExitCode.OK, err
    assert out.startswith("h1 is cordoned: the scheduler places no new instances there;")
    assert "`ozwald uncordon h1` undoes it" in out
    assert fake.hosts[0].cordoned

    code, out, _ = _run(capsys, address, "hosts")
    assert code == ExitCode.OK
    assert "READY,cordoned" in out

    code, out, _ = _run(capsys, address, "--json", "uncordon", "h1")
    assert code == ExitCode.OK
    assert json.loads(out)["id"] == "h1"
    assert not fake.hosts[0].cordoned
    code, out, _ = _run(capsys, address, "uncordon", "h1")
    assert out == "h1 is uncordoned: it takes new instances again.\n"


@pytest.mark.parametrize("command", ["cordon", "uncordon"])
def test_an_unknown_host_exits_21_with_the_remedy(
    capsys: pytest.CaptureFixture[str], address: str, command: str
) -> None:
    code, _, err = _run(capsys, address, command, "h9")
    assert code == ExitCode.HOST_NOT_FOUND
    assert int(code) == 21
    assert "no host 'h9' in the fleet" in err
    assert "ozwald hosts" in err


def test_the_sdk_raises_host_not_found_naming_the_host(address: str) -> None:
    with FleetClient(address) as client, pytest.raises(HostNotFoundError) as raised:
        client.cordon_host("h9")
    assert raised.value.host_id == "h9"
    assert raised.value.code == grpc.StatusCode.NOT_FOUND


def test_hosts_marks_a_cordoned_host_that_is_down_too() -> None:
    now = datetime.datetime.now(datetime.UTC)
    down = FS.Host(id="h2", state=FS.HOST_STATE_DOWN, cordoned=True, state_since=stamp(now))
    assert "DOWN,cordoned" in render_hosts([down], now)


def test_hosts_says_how_many_instances_a_running_drain_still_has_to_move() -> None:
    now = datetime.datetime.now(datetime.UTC)
    draining = FS.Host(
        id="h1",
        state=FS.HOST_STATE_READY,
        connected=True,
        cordoned=True,
        state_since=stamp(now),
        drain=FS.HostDrain(state=FS.DRAIN_STATE_RUNNING, remaining=3),
    )
    finished = FS.Host(
        id="h2",
        state=FS.HOST_STATE_READY,
        connected=True,
        cordoned=True,
        state_since=stamp(now),
        drain=FS.HostDrain(state=FS.DRAIN_STATE_COMPLETE),
    )
    table = render_hosts([draining, finished], now)
    assert "READY,cordoned,draining (3 left)" in table
    assert table.count("draining") == 1
