"""`ozwald rollout ...` and `ozwald drain` against a real in-process FleetService: what
they send, what people read, the JSON, and the exit codes of refusals."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator

import grpc
import pytest
from ozwald.common.v1.error_reason_pb2 import (
    ERROR_REASON_HOST_NOT_FOUND,
    ERROR_REASON_ROLLOUT_NOT_ACTIVE,
    ERROR_REASON_ROLLOUT_NOT_FOUND,
)
from ozwald.orchestrator.v1 import deployment_pb2, rollout_pb2
from ozwald.orchestrator.v1 import fleet_service_pb2 as pb
from ozwald.orchestrator.v1 import fleet_state_pb2 as FS

from ozwald_sdk import rpc_status
from ozwald_sdk.cli.main import main
from ozwald_sdk.cli.rollout import render_rollout
from ozwald_sdk.errors import ExitCode
from tests.unit.cli.fleet_fake import FleetFake, serve_fleet, stamp

NOW = datetime.datetime(2026, 11, 27, 10, 0, tzinfo=datetime.UTC)
R = rollout_pb2


def _rollout(state: R.RolloutState.ValueType = R.ROLLOUT_STATE_RUNNING) -> R.Rollout:
    rollout = R.Rollout(
        deployment="web",
        id=1,
        from_version=1,
        to_version=2,
        state=state,
        reason="replacing version 1 with 2",
        desired=4,
        updated=2,
        healthy=1,
        available=3,
        promoted=False,
        started_at=stamp(NOW - datetime.timedelta(seconds=30)),
        progress_deadline=stamp(NOW + datetime.timedelta(seconds=90)),
    )
    rollout.strategy.max_parallel = 1
    rollout.strategy.min_healthy_time.FromSeconds(10)
    rollout.strategy.healthy_deadline.FromSeconds(300)
    rollout.strategy.progress_deadline.FromSeconds(600)
    rollout.strategy.canaries = 1
    return rollout


class RolloutFleetFake(FleetFake):
    """The CLI fake with one deployment's rollout and the drain of host h1."""

    rollout: R.Rollout | None = None

    def GetRollout(
        self, request: pb.GetRolloutRequest, context: grpc.ServicerContext
    ) -> pb.GetRolloutResponse:
        self._arrive("GetRollout", request, context)
        return pb.GetRolloutResponse(rollout=self._current(context))

    def PauseRollout(
        self, request: pb.PauseRolloutRequest, context: grpc.ServicerContext
    ) -> pb.PauseRolloutResponse:
        self._arrive("PauseRollout", request, context)
        rollout = self._current(context)
        if rollout.state not in (R.ROLLOUT_STATE_RUNNING, R.ROLLOUT_STATE_PAUSED):
            rpc_status.abort(
                context,
                grpc.StatusCode.FAILED_PRECONDITION,
                ERROR_REASON_ROLLOUT_NOT_ACTIVE,
                "cannot pause the rollout of 'web': rollout 1 is succeeded, not running",
                "see it with `ozwald rollout status web`",
                deployment="web",
                state=R.RolloutState.Name(rollout.state),
            )
        rollout.state = R.ROLLOUT_STATE_PAUSED
        return pb.PauseRolloutResponse(rollout=rollout)

    def PromoteRollout(
        self, request: pb.PromoteRolloutRequest, context: grpc.ServicerContext
    ) -> pb.PromoteRolloutResponse:
        self._arrive("PromoteRollout", request, context)
        rollout = self._current(context)
        rollout.promoted = True
        return pb.PromoteRolloutResponse(rollout=rollout)

    def UndoRollout(
        self, request: pb.UndoRolloutRequest, context: grpc.ServicerContext
    ) -> pb.UndoRolloutResponse:
        self._arrive("UndoRollout", request, context)
        undo = _rollout()
        undo.id, undo.from_version, undo.to_version, undo.is_revert = 2, 2, 3, True
        undo.reason = f"undo to version {request.to_version or 1}'s spec"
        return pb.UndoRolloutResponse(
            deployment=deployment_pb2.Deployment(name="web", version=3), rollout=undo
        )

    def DrainHost(
        self, request: pb.DrainHostRequest, context: grpc.ServicerContext
    ) -> pb.DrainHostResponse:
        self._arrive("DrainHost", request, context)
        if request.host_id != "h1":
            rpc_status.abort(
                context,
                grpc.StatusCode.NOT_FOUND,
                ERROR_REASON_HOST_NOT_FOUND,
                f"no host {request.host_id!r} in the fleet (hosts: h1)",
                "check the host id with `ozwald hosts`",
                host_id=request.host_id,
            )
        host = self.hosts[0]
        host.cordoned = True
        host.drain.state = FS.DRAIN_STATE_COMPLETE
        host.drain.deadline.CopyFrom(stamp(NOW + request.deadline.ToTimedelta()))
        return pb.DrainHostResponse(host=host)

    def _current(self, context: grpc.ServicerContext) -> R.Rollout:
        if self.rollout is None:
            rpc_status.abort(
                context,
                grpc.StatusCode.NOT_FOUND,
                ERROR_REASON_ROLLOUT_NOT_FOUND,
                "deployment 'web' has no rollout",
                "a rollout starts when `ozwald apply` changes what the deployment runs",
                deployment="web",
            )
        return self.rollout


@pytest.fixture
def fake() -> RolloutFleetFake:
    fake = RolloutFleetFake()
    fake.add_host(FS.Host(id="h1", state=FS.HOST_STATE_READY, connected=True))
    return fake


@pytest.fixture
def address(fake: RolloutFleetFake) -> Iterator[str]:
    with serve_fleet(fake) as address:
        yield address


def _run(capsys: pytest.CaptureFixture[str], address: str, *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--orchestrator", address])
    out, err = capsys.readouterr()
    return code, out, err


def test_status_says_where_the_rollout_stands() -> None:
    assert render_rollout(_rollout(), NOW).splitlines() == [
        "web: rollout 1, version 1 -> 2: running",
        "  updated 2/4, healthy 1/4, available 3/4",
        "  strategy: max_parallel 1, min_healthy_time 10s, healthy_deadline 5m,",
        "    progress_deadline 10m, auto_revert off, canaries 1 (not promoted)",
        "  started 2026-11-27T09:59:30Z (30s ago)",
        "  deadline 2026-11-27T10:01:30Z (fails in 90s unless an instance becomes healthy)",
        "  replacing version 1 with 2",
    ]


def test_a_deployment_without_a_rollout_exits_22(
    capsys: pytest.CaptureFixture[str], address: str
) -> None:
    code, _, err = _run(capsys, address, "rollout", "status", "web")
    assert code == ExitCode.ROLLOUT_NOT_FOUND
    assert "has no rollout" in err


def test_pause_of_a_finished_rollout_exits_23(
    capsys: pytest.CaptureFixture[str], address: str, fake: RolloutFleetFake
) -> None:
    fake.rollout = _rollout(R.ROLLOUT_STATE_SUCCEEDED)
    code, _, err = _run(capsys, address, "rollout", "pause", "web")
    assert code == ExitCode.ROLLOUT_NOT_ACTIVE
    assert "hint: see it with `ozwald rollout status web`" in err


def test_pause_and_promote_print_the_rollout(
    capsys: pytest.CaptureFixture[str], address: str, fake: RolloutFleetFake
) -> None:
    fake.rollout = _rollout()
    code, out, _ = _run(capsys, address, "rollout", "pause", "web")
    assert code == ExitCode.OK
    assert out.splitlines()[:2] == [
        "Paused the rollout of web.",
        "web: rollout 1, version 1 -> 2: paused",
    ]
    code, out, _ = _run(capsys, address, "rollout", "promote", "web", "--json")
    assert code == ExitCode.OK
    assert json.loads(out)["promoted"] is True
    [call] = fake.calls_to("PromoteRollout")
    assert call.request.deployment == "web"


def test_undo_sends_the_version_asked_for(
    capsys: pytest.CaptureFixture[str], address: str, fake: RolloutFleetFake
) -> None:
    code, out, _ = _run(capsys, address, "rollout", "undo", "web", "--to-version", "1")
    assert code == ExitCode.OK
    [call] = fake.calls_to("UndoRollout")
    assert (call.request.deployment, call.request.to_version) == ("web", 1)
    assert out.splitlines()[0] == "web is now version 3; rolling it out."
    assert "undo to version 1's spec" in out


def test_undo_refuses_a_version_that_is_not_one_before_sending(
    capsys: pytest.CaptureFixture[str], address: str, fake: RolloutFleetFake
) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["rollout", "undo", "web", "--to-version", "0", "--orchestrator", address])
    assert raised.value.code == ExitCode.USAGE
    assert fake.calls_to("UndoRollout") == []


def test_drain_sends_the_deadline_and_prints_the_host(
    capsys: pytest.CaptureFixture[str], address: str, fake: RolloutFleetFake
) -> None:
    code, out, _ = _run(capsys, address, "drain", "h1", "--deadline", "90s", "--json")
    assert code == ExitCode.OK
    [call] = fake.calls_to("DrainHost")
    assert call.request.deadline.ToTimedelta().total_seconds() == 90
    host = json.loads(out)
    assert host["cordoned"] is True and host["drain"]["state"] == "DRAIN_STATE_COMPLETE"


def test_drain_of_an_unknown_host_exits_21(
    capsys: pytest.CaptureFixture[str], address: str
) -> None:
    code, _, err = _run(capsys, address, "drain", "h9")
    assert code == ExitCode.HOST_NOT_FOUND
    assert "no host 'h9'" in err


def test_a_deadline_that_is_no_duration_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], address: str
) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["drain", "h1", "--deadline", "soon", "--orchestrator", address])
    assert raised.value.code == ExitCode.USAGE
    assert "a duration like 30s" in capsys.readouterr().err
