"""`ozwald status`, `list_active_services`, `logs` and `down` end to end, against a real
in-process gRPC agent that keeps its services in memory."""

from __future__ import annotations

import datetime
import json
from collections.abc import Generator, Iterator

import pytest
from google.protobuf import json_format
from ozwald.agent.v1 import agent_service_pb2 as pb
from ozwald.agent.v1 import service_status_pb2 as S
from ozwald.common.v1.host_profile_pb2 import HostProfile
from ozwald.common.v1.service_spec_pb2 import ServiceSpec

from ozwald_sdk.agent_client import AgentClient
from ozwald_sdk.cli.main import main
from ozwald_sdk.cli.render_services import age, render_status_table
from ozwald_sdk.errors import ExitCode
from ozwald_sdk.testing import serve_agent
from tests.unit.cli.provisioning_fake import ProvisioningFake, status

LONG_REASON = (
    "health check failing: GET http://127.0.0.1:8080/healthz answered 503 Service "
    "Unavailable after 1.0 s; 3 failures in a row, restarting in 4 s"
)


@pytest.fixture
def fake(cpu_only_profile: HostProfile) -> Iterator[ProvisioningFake]:
    fake = ProvisioningFake(cpu_only_profile)
    yield fake
    fake.join()


@pytest.fixture
def address(fake: ProvisioningFake) -> Iterator[str]:
    with serve_agent(fake) as address:
        yield address


@pytest.fixture
def ozwald(capsys: pytest.CaptureFixture[str], address: str) -> Iterator[Runner]:
    yield Runner(capsys, address)


class Runner:
    def __init__(self, capsys: pytest.CaptureFixture[str], address: str) -> None:
        self.capsys, self.address = capsys, address

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        code = main(["--agent", self.address, *argv])
        out, err = self.capsys.readouterr()
        return code, out, err


def running(fake: ProvisioningFake, name: str, realm: str = "default") -> None:
    """`name` runs and is desired, as after an update that started it."""
    spec = ServiceSpec(realm=realm, name=name, image="ozwald/tiny:local")
    fake.seed(status(name, S.INSTANCE_STATE_READY, "health check passed", realm=realm), spec)


# status -----------------------------------------------------------------------------


def test_status_table_fits_80_columns_and_cuts_a_long_reason(
    ozwald: Runner, fake: ProvisioningFake
) -> None:
    fake.seed(
        status(
            "embed",
            S.INSTANCE_STATE_UNHEALTHY,
            LONG_REASON,
            variety="nvidia",
            profile="fast",
            restart_count=3,
            endpoints=["127.0.0.1:18443"],
            since_seconds_ago=3 * 3600 + 5,
        )
    )
    fake.seed(status("web", S.INSTANCE_STATE_READY, "health check passed", since_seconds_ago=75))

    code, out, err = ozwald("status")

    assert (code, err) == (ExitCode.OK, "")
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert lines[0].split() == [
        "SERVICE", "VARIETY", "STATE", "SINCE", "RESTARTS", "PORTALS", "REASON"
    ]  # fmt: skip
    embed = lines[1].split()
    assert embed[:6] == ["default:embed", "nvidia/fast", "UNHEALTHY", "3h", "3", "18443"]
    assert embed[6] == "health"
    assert lines[1].endswith("…")
    web = lines[2].split()
    assert web[:6] == ["default:web", "-", "READY", "1m", "0", "-"]
    # The reason of a service that is not ready, cut in the table, is shown whole below.
    assert f"default:embed is UNHEALTHY: {LONG_REASON}" in " ".join(out.split())
    assert "default:web is" not in out


def test_status_table_fits_80_columns_whatever_the_names(
    ozwald: Runner, fake: ProvisioningFake
) -> None:
    fake.seed(
        status(
            "embedding-service-with-a-rather-long-name",
            S.INSTANCE_STATE_RESTARTING,
            LONG_REASON,
            realm="research-and-development",
            variety="amdgpu",
            profile="long-context-and-low-memory",
            restart_count=12,
            endpoints=["0.0.0.0:18443", "192.168.100.200:18080"],
        )
    )
    fake.seed(status("web", S.INSTANCE_STATE_READY, "health check passed"))

    code, out, _ = ozwald("status")

    assert code == ExitCode.OK
    assert max(len(line) for line in out.splitlines()) <= 80
    row = next(line for line in out.splitlines() if "RESTARTING" in line).split()
    assert row[0].startswith("research-and-")
    assert row[0].endswith("…")
    assert row[2:5] == ["RESTARTING", "0s", "12"]


def test_status_shows_the_last_log_lines_of_failed_services(
    ozwald: Runner, fake: ProvisioningFake
) -> None:
    fake.seed(
        status(
            "worker",
            S.INSTANCE_STATE_FAILED,
            "exited with code 3 while starting",
            last_log_lines=[f"line {i}: " + "x" * 100 for i in range(1, 9)],
        )
    )

    code, out, _ = ozwald("status")

    assert code == ExitCode.OK
    assert "default:worker failed: exited with code 3 while starting" in out
    assert "\n  last log lines:\n" in out
    assert "    line 8: xxx" in out
    assert "    line 4: " in out
    assert "line 3: " not in out  # a few lines: the last five
    assert max(len(line) for line in out.splitlines()) <= 80


def test_status_json_is_the_list_response_and_realm_filters(
    ozwald: Runner, fake: ProvisioningFake
) -> None:
    running(fake, "web")
    running(fake, "trainer", realm="lab")

    code, out, _ = ozwald("status", "--realm", "lab", "--json")

    assert code == ExitCode.OK
    response = json_format.Parse(out, pb.ListServicesResponse())
    assert [(s.realm, s.name) for s in response.instances] == [("lab", "trainer")]
    assert response.event_sequence == 2
    assert fake.sent("ListServices")[0].realm == "lab"


def test_status_of_an_empty_host(ozwald: Runner) -> None:
    assert ozwald("status") == (ExitCode.OK, "No services on this host.\n", "")


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0, "0s"), (59, "59s"), (60, "1m"), (7199, "1h"), (90000, "1d")]
)
def test_age_is_one_unit(seconds: int, shown: str) -> None:
    now = datetime.datetime(2026, 11, 27, 12, 0, tzinfo=datetime.UTC)
    instance = S.InstanceStatus()
    instance.state_since.FromDatetime(now - datetime.timedelta(seconds=seconds))
    assert age(instance, now) == shown


def test_status_table_keeps_to_a_narrower_width_too() -> None:
    instance = status(
        "a-service-name-long-enough-to-need-cutting",
        S.INSTANCE_STATE_RESTARTING,
        LONG_REASON,
        endpoints=["192.168.100.200:18080"],
    )
    text = render_status_table([instance], datetime.datetime.now(datetime.UTC), width=60)
    assert max(len(line) for line in text.splitlines()) <= 60


# list_active_services ---------------------------------------------------------------


def test_list_active_services_lists_only_running_instances_with_endpoints(
    ozwald: Runner, fake: ProvisioningFake
) -> None:
    for name, state in [
        ("a-pending", S.INSTANCE_STATE_PENDING),
        ("b-starting", S.INSTANCE_STATE_STARTING),
        ("c-ready", S.INSTANCE_STATE_READY),
        ("d-unhealthy", S.INSTANCE_STATE_UNHEALTHY),
        ("e-restarting", S.INSTANCE_STATE_RESTARTING),
        ("f-failed", S.INSTANCE_STATE_FAILED),
    ]:
        fake.seed(status(name, state, "why", endpoints=["127.0.0.1:18080"]))

    code, out, _ = ozwald("list_active_services")
    json_code, json_out, _ = ozwald("list_active_services", "--json")

    assert code == json_code == ExitCode.OK
    rows = [line.split() for line in out.splitlines()[1:]]
    assert rows == [
        ["default:b-starting", "STARTING", "127.0.0.1:18080"],
        ["default:c-ready", "READY", "127.0.0.1:18080"],
        ["default:d-unhealthy", "UNHEALTHY", "127.0.0.1:18080"],
    ]
    response = json_format.Parse(json_out, pb.ListServicesResponse())
    assert [s.name for s in response.instances] == ["b-starting", "c-ready", "d-unhealthy"]


def test_list_active_services_when_nothing_runs(ozwald: Runner, fake: ProvisioningFake) -> None:
    fake.seed(status("f-failed", S.INSTANCE_STATE_FAILED, "exited"))
    assert ozwald("list_active_services") == (ExitCode.OK, "No service is running.\n", "")


# logs -------------------------------------------------------------------------------


def test_logs_writes_the_bytes_as_they_come(ozwald: Runner, fake: ProvisioningFake) -> None:
    running(fake, "web")
    fake.logs["web"] = [b"GET / 200\n", b"caf\xc3\xa9 ", b"GET /healthz 200\n"]

    code, out, err = ozwald("logs", "web")

    assert (code, out, err) == (ExitCode.OK, "GET / 200\ncafé GET /healthz 200\n", "")
    (request,) = fake.sent("StreamServiceLogs")
    assert (request.service.realm, request.service.name, request.follow) == ("", "web", False)


def test_logs_tail_and_follow_are_sent(ozwald: Runner, fake: ProvisioningFake) -> None:
    running(fake, "web")
    fake.logs["web"] = [b"one\n", b"two\n"]
    fake.follow_for = 0.2  # the container goes away

    code, out, _ = ozwald("logs", "default:web", "-f", "--tail", "1")

    assert (code, out) == (ExitCode.OK, "two\n")
    (request,) = fake.sent("StreamServiceLogs")
    assert (request.service.realm, request.tail_lines, request.follow) == ("default", 1, True)


def test_ctrl_c_ends_logs_follow_quietly_with_exit_130(
    ozwald: Runner, fake: ProvisioningFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    running(fake, "web")
    fake.logs["web"] = [b"one\n"]
    streamed = AgentClient.service_logs

    def interrupted(self: AgentClient, *args: object, **kwargs: object) -> Generator[bytes]:
        yield from streamed(self, *args, **kwargs)  # type: ignore[arg-type]
        raise KeyboardInterrupt

    monkeypatch.setattr(AgentClient, "service_logs", interrupted)
    fake.follow_for = 0.1

    assert ozwald("logs", "web", "-f") == (ExitCode.INTERRUPTED, "one\n", "")


def test_logs_of_an_unknown_service_exits_13(ozwald: Runner) -> None:
    code, out, err = ozwald("logs", "nope")

    assert (code, out) == (ExitCode.SERVICE_NOT_FOUND, "")
    assert "error: no service default:nope on this host" in err
    assert "hint: `ozwald status` lists the services" in err


def test_logs_takes_a_service_not_a_selector(ozwald: Runner, fake: ProvisioningFake) -> None:
    code, _, err = ozwald("logs", "web[cpu]")

    assert code == ExitCode.CONFIG_INVALID
    assert "write 'web'" in err
    assert fake.calls == []


# down -------------------------------------------------------------------------------


def test_down_stops_the_named_services(ozwald: Runner, fake: ProvisioningFake) -> None:
    running(fake, "web")
    running(fake, "worker")

    code, out, err = ozwald("down", "worker")

    assert (code, out, err) == (ExitCode.OK, "Stopping default:worker\n", "")
    assert list(fake.running) == [("default", "web")]


def test_down_without_names_stops_every_dynamic_service_and_waits(
    ozwald: Runner, fake: ProvisioningFake
) -> None:
    running(fake, "web")
    running(fake, "worker")
    fake.event_gap = 0.05

    code, out, _ = ozwald("down", "--wait")

    assert code == ExitCode.OK
    lines = out.splitlines()
    assert lines[0] == "Stopping default:web, default:worker"
    assert "  default:worker  STOPPED     no longer desired" in lines
    assert lines[-1] == "Stopped."
    assert fake.instances == {}


def test_down_wait_gives_up_after_its_timeout(ozwald: Runner, fake: ProvisioningFake) -> None:
    running(fake, "web")
    fake.event_gap = 5.0

    code, _, err = ozwald("down", "web", "--wait", "--timeout-stopped", "0.3")

    assert code == ExitCode.DEADLINE_EXCEEDED
    assert "not every service was stopped within 0.3 s: default:web READY" in err


def test_down_json_is_the_stop_response(ozwald: Runner, fake: ProvisioningFake) -> None:
    running(fake, "web")

    code, out, _ = ozwald("down", "--json", "--wait")

    assert code == ExitCode.OK
    response = json_format.Parse(out, pb.StopServicesResponse())
    assert [(r.realm, r.name) for r in response.stopping] == [("default", "web")]
    assert json.loads(out)["event_sequence"] == "1"


def test_down_of_an_unknown_service_exits_13_and_stops_nothing(
    ozwald: Runner, fake: ProvisioningFake
) -> None:
    running(fake, "web")

    code, _, err = ozwald("down", "web", "wbe")

    assert code == ExitCode.SERVICE_NOT_FOUND
    assert "no service default:wbe" in err
    assert list(fake.running) == [("default", "web")]


def test_down_when_nothing_runs(ozwald: Runner) -> None:
    code, out, _ = ozwald("down", "--wait")
    assert (code, out) == (
        ExitCode.OK,
        "Nothing to stop: no dynamic service is desired on this host.\n",
    )
