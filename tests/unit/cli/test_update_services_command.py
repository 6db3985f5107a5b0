"""`ozwald update_services` end to end: argv in, a real in-process gRPC agent (an
in-memory fake of the provisioning RPCs), text or JSON out, and the exit code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import json_format
from ozwald.agent.v1 import agent_service_pb2 as pb
from ozwald.agent.v1 import plan_pb2 as P
from ozwald.agent.v1 import service_status_pb2 as S
from ozwald.common.v1.host_profile_pb2 import HostProfile
from ozwald.common.v1.service_spec_pb2 import ServiceSpec

from ozwald_sdk.cli.main import main
from ozwald_sdk.config import load_config, resolve
from ozwald_sdk.errors import ExitCode
from ozwald_sdk.testing import serve_agent
from tests.unit.cli.provisioning_fake import CONFIG, ProvisioningFake, Step, refusal, status

FAILS_AT_START = (
    Step(S.INSTANCE_STATE_CREATING, "creating its container"),
    Step(S.INSTANCE_STATE_STARTING, "container started; waiting for health"),
    Step(
        S.INSTANCE_STATE_FAILED,
        "exited with code 3 while starting",
        log_lines=tuple(f"log line {i}" for i in range(1, 13)),
    ),
)
NEVER_READY = FAILS_AT_START[:2]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "ozwald.yml"
    path.write_text(CONFIG)
    return path


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
def update(
    capsys: pytest.CaptureFixture[str], address: str, config: Path
) -> Iterator[UpdateRunner]:
    yield UpdateRunner(capsys, address, config)


class UpdateRunner:
    def __init__(self, capsys: pytest.CaptureFixture[str], address: str, config: Path) -> None:
        self.capsys, self.address, self.config = capsys, address, config

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        code = main(
            ["--agent", self.address, "update_services", *argv, "--config", str(self.config)]
        )
        out, err = self.capsys.readouterr()
        return code, out, err


def spec_of(config: Path, selector: str, profile: HostProfile) -> ServiceSpec:
    return resolve(load_config(config), selector, profile).to_service_spec()


def flat(text: str) -> str:
    """`text` with every run of whitespace (line breaks of wrapped prose) as one space."""
    return " ".join(text.split())


def _fits_80_columns(text: str) -> bool:
    return all(len(line) <= 80 for line in text.splitlines())


# --plan -----------------------------------------------------------------------------


def test_plan_that_fits_shows_each_action_with_its_figures_and_changes_nothing(
    update: UpdateRunner, fake: ProvisioningFake
) -> None:
    code, out, err = update("--plan", "web", "worker")

    assert code == ExitCode.OK
    assert err == ""
    assert "Admitted: 2 services to change." in out
    assert "START    default:web     new service" in out
    assert "memory 64.0 MiB (declared); cpus 0.5 (declared)" in out
    assert "memory 32.0 MiB (declared); cpus not declared" in out
    assert "Budget" in out
    assert _fits_80_columns(out)
    (request,) = fake.sent("PlanServices")
    assert [s.name for s in request.services] == ["web", "worker"]
    assert fake.sent("ApplyServices") == []
    assert fake.running == {}


def test_plan_says_which_running_services_it_stops_and_why(
    update: UpdateRunner, fake: ProvisioningFake, config: Path, cpu_only_profile: HostProfile
) -> None:
    worker = spec_of(config, "worker", cpu_only_profile)
    fake.seed(status("worker", S.INSTANCE_STATE_READY, "health check passed"), worker)

    code, out, _ = update("--plan", "web")

    assert code == ExitCode.OK
    assert "STOP     default:worker  no longer desired" in out
    assert "gives back memory 32.0 MiB (declared)" in out
    assert "default:worker is not in the desired set" in out
    assert "the complete set of dynamic services on the host, and stops the others" in flat(out)


def test_refused_plan_lists_every_refusal_with_its_remedy_and_exits_11(
    update: UpdateRunner, fake: ProvisioningFake
) -> None:
    fake.refusals["worker"] = refusal(
        "worker",
        P.REFUSAL_REASON_IMAGE_MISSING,
        "image 'ozwald/tiny:local' is not present on this host (admission never pulls)",
        "pull, load or build it on the host",
    )

    code, out, err = update("--plan", "web", "worker", "big")

    assert code == ExitCode.ADMISSION_REFUSED
    assert err == ""
    assert "REFUSED: 2 problems" in out
    assert "default:big  INSUFFICIENT_MEMORY" in out
    assert "needs 64.0 GiB memory (declared)" in out
    assert "remedy: lower the service's memory" in out
    assert "default:worker  IMAGE_MISSING" in out
    assert "remedy: pull, load or build it on the host" in out
    assert _fits_80_columns(out)
    assert fake.sent("ApplyServices") == []


def test_plan_json_is_the_plan_message(update: UpdateRunner) -> None:
    code, out, _ = update("--plan", "web", "big", "--json")

    assert code == ExitCode.ADMISSION_REFUSED
    plan = json_format.Parse(out, P.Plan())
    assert not plan.admitted
    assert [(r.name, r.reason) for r in plan.refusals] == [
        ("big", P.REFUSAL_REASON_INSUFFICIENT_MEMORY)
    ]
    assert json.loads(out)["actions"][0]["kind"] == "ACTION_KIND_START"


# Apply ------------------------------------------------------------------------------


def test_refused_apply_prints_the_refusals_on_stderr_changes_nothing_and_exits_11(
    update: UpdateRunner, fake: ProvisioningFake
) -> None:
    code, out, err = update("web", "big")

    assert code == ExitCode.ADMISSION_REFUSED
    assert out == ""
    assert "default:big  INSUFFICIENT_MEMORY" in err
    assert "remedy: lower the service's memory" in err
    assert "error: nothing changed: needs 64.0 GiB memory" in err
    assert "hint: see each refusal's remedy" in err
    assert err.index("Refused:") < err.index("error:")
    assert fake.running == {}


def test_refused_apply_with_json_prints_the_refused_plan_on_stdout(update: UpdateRunner) -> None:
    code, out, err = update("web", "big", "--json")

    assert code == ExitCode.ADMISSION_REFUSED
    plan = json_format.Parse(out, P.Plan())
    assert plan.refusals[0].remedy.startswith("lower the service's memory")
    assert "error: nothing changed" in err


def test_apply_says_what_starts_and_stops_without_waiting(
    update: UpdateRunner, fake: ProvisioningFake, config: Path, cpu_only_profile: HostProfile
) -> None:
    fake.seed(
        status("worker", S.INSTANCE_STATE_READY, "health check passed"),
        spec_of(config, "worker", cpu_only_profile),
    )

    code, out, err = update("web[][loud]")

    assert code == ExitCode.OK
    assert err == ""
    assert "Updated host build-box: 1 starting, 1 stopping" in out
    assert "START    default:web     new service" in out
    assert "STOP     default:worker  no longer desired" in out
    assert "`ozwald status` shows where each service is" in out
    (request,) = fake.sent("ApplyServices")
    assert [(s.name, s.profile) for s in request.services] == [("web", "loud")]
    assert request.services[0].environment["GREETING"] == "HELLO"
    assert fake.sent("WatchServices") == []


def test_apply_json_is_the_apply_response(update: UpdateRunner) -> None:
    code, out, _ = update("web", "--json")

    assert code == ExitCode.OK
    response = json_format.Parse(out, pb.ApplyServicesResponse())
    assert response.plan.admitted
    assert [a.name for a in response.plan.actions] == ["web"]


def test_variety_is_chosen_for_the_agents_host(
    update: UpdateRunner, fake: ProvisioningFake
) -> None:
    code, _, _ = update("embed")

    assert code == ExitCode.OK
    assert [c for c, _ in fake.calls[:2]] == ["GetHostProfile", "ApplyServices"]
    (request,) = fake.sent("ApplyServices")
    assert request.services[0].variety == "cpu"


def test_all_means_every_service_that_is_not_persistent(
    update: UpdateRunner, fake: ProvisioningFake
) -> None:
    code, out, _ = update("--plan", "--all")

    assert code == ExitCode.ADMISSION_REFUSED  # big does not fit this host
    (request,) = fake.sent("PlanServices")
    assert sorted(s.name for s in request.services) == ["big", "embed", "web", "worker"]
    assert "default:keeper" not in out


# --wait -----------------------------------------------------------------------------


def test_wait_follows_every_service_to_ready_and_shows_endpoints(
    update: UpdateRunner, fake: ProvisioningFake
) -> None:
    code, out, err = update("--wait", "web", "worker")

    assert code == ExitCode.OK
    assert err == ""
    assert "Waiting up to 600 s for 2 services to be ready:" in out
    assert "  default:web     STARTING    container started; waiting for health" in out
    assert "  default:worker  READY       health check passed" in out
    assert "Ready after" in out
    assert "  default:web     127.0.0.1:18080" in out


def test_wait_follows_events_that_arrive_after_it_started(
    update: UpdateRunner, fake: ProvisioningFake
) -> None:
    fake.event_gap = 0.05

    code, out, _ = update("--wait", "web")

    assert code == ExitCode.OK
    progress = [line.split() for line in out.splitlines() if line.startswith("  default:web  ")]
    assert [words[1] for words in progress if len(words) > 2] == ["CREATING", "STARTING", "READY"]


def test_wait_stops_at_the_first_failure_with_its_reason_and_last_log_lines(
    update: UpdateRunner, fake: ProvisioningFake
) -> None:
    fake.scripts["worker"] = FAILS_AT_START

    code, out, err = update("--wait", "web", "worker")

    assert code == ExitCode.SERVICE_FAILED
    assert "  default:worker  FAILED      exited with code 3 while starting" in out
    assert "error: default:worker failed: exited with code 3 while starting" in err
    assert "    log line 12" in err
    assert "    log line 3\n" in err
    assert "log line 2\n" not in err  # the last ten lines only
    assert "hint: fix the cause, then update again; `ozwald logs default:worker` shows" in err


@pytest.mark.timeout(20)
def test_wait_reports_a_failure_while_another_service_is_still_starting(
    update: UpdateRunner, fake: ProvisioningFake
) -> None:
    # At once, not when --timeout-ready has passed (the test's own timeout is shorter).
    fake.scripts["web"] = NEVER_READY
    fake.scripts["worker"] = FAILS_AT_START

    code, _, err = update("--wait", "--timeout-ready", "60", "web", "worker")

    assert code == ExitCode.SERVICE_FAILED
    assert "error: default:worker failed" in err


def test_wait_gives_up_after_timeout_ready_with_exit_6(
    update: UpdateRunner, fake: ProvisioningFake
) -> None:
    fake.scripts["web"] = NEVER_READY

    code, _, err = update("--wait", "--timeout-ready", "0.5", "web")

    assert code == ExitCode.DEADLINE_EXCEEDED
    assert "error: not every service was ready within 0.5 s: default:web STARTING" in err
    assert "hint: wait longer (--timeout-ready)" in err


def test_wait_does_not_take_the_running_old_spec_for_the_new_one(
    update: UpdateRunner, fake: ProvisioningFake, config: Path, cpu_only_profile: HostProfile
) -> None:
    # web runs ready with its plain spec; the update restarts it with profile loud, and
    # the new instance fails. The READY status listed when the wait begins is the old
    # instance's: it must not end the wait.
    fake.seed(
        status("web", S.INSTANCE_STATE_READY, "health check passed"),
        spec_of(config, "web", cpu_only_profile),
    )
    fake.scripts["web"] = (Step(S.INSTANCE_STATE_STOPPING, "stopping"), *FAILS_AT_START)
    fake.event_gap = 0.05

    code, _, err = update("--wait", "web[][loud]")

    assert code == ExitCode.SERVICE_FAILED
    assert "default:web failed" in err


def test_wait_does_not_take_a_failure_from_before_the_update_for_its_outcome(
    update: UpdateRunner, fake: ProvisioningFake, config: Path, cpu_only_profile: HostProfile
) -> None:
    # The agent retries a failed service on every apply; the FAILED status listed when
    # the wait begins is the previous attempt's.
    fake.seed(
        status("web", S.INSTANCE_STATE_FAILED, "exited with code 1 while starting"),
        spec_of(config, "web", cpu_only_profile),
    )
    fake.event_gap = 0.05

    code, out, err = update("--wait", "web")

    assert (code, err) == (ExitCode.OK, "")
    assert "Ready after" in out


def test_wait_for_services_that_already_run_as_desired_returns_at_once(
    update: UpdateRunner, fake: ProvisioningFake, config: Path, cpu_only_profile: HostProfile
) -> None:
    fake.seed(
        status("web", S.INSTANCE_STATE_READY, "health check passed"),
        spec_of(config, "web", cpu_only_profile),
    )

    code, out, _ = update("--wait", "--timeout-ready", "5", "web")

    assert code == ExitCode.OK
    assert "Nothing to change on host build-box" in out
    assert "Ready after" in out


def test_wait_json_has_the_response_and_the_final_statuses(update: UpdateRunner) -> None:
    code, out, err = update("--wait", "--json", "web")

    assert code == ExitCode.OK
    document = json.loads(out)
    assert document["plan"]["admitted"] is True
    (instance,) = document["instances"]
    assert json_format.ParseDict(instance, S.InstanceStatus()).state == S.INSTANCE_STATE_READY
    assert "READY" in err  # progress goes to stderr, out of the way of the JSON


# Selectors and usage ----------------------------------------------------------------


def test_unknown_service_is_refused_with_did_you_mean_before_any_plan(
    update: UpdateRunner, fake: ProvisioningFake
) -> None:
    code, out, err = update("--plan", "wbe", "worker", "web[][quiet]")

    assert code == ExitCode.CONFIG_INVALID
    assert out == ""
    assert "error: 2 of the services named cannot be used:" in err
    assert "wbe: no service 'wbe' in realm 'default'; did you mean 'web'?" in err
    assert "no profile 'quiet'" in err
    assert fake.sent("PlanServices") == []


def test_malformed_selector_is_refused_without_asking_the_agent(
    update: UpdateRunner, fake: ProvisioningFake
) -> None:
    code, _, err = update("web[cpu", "--plan")

    assert code == ExitCode.CONFIG_INVALID
    assert "not a service selector" in err
    assert fake.calls == []


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (("keeper",), "default:keeper is a persistent service"),
        (("web", "default:web[][loud]"), "default:web is named twice"),
    ],
)
def test_persistent_and_repeated_services_are_refused(
    update: UpdateRunner, fake: ProvisioningFake, specs: tuple[str, ...], message: str
) -> None:
    code, _, err = update(*specs)

    assert code == ExitCode.CONFIG_INVALID
    assert message in err
    assert fake.sent("ApplyServices") == []


def test_invalid_config_with_json_prints_the_diagnostics(
    update: UpdateRunner, config: Path
) -> None:
    config.write_text(CONFIG.replace("depends_on: [web]", "depends_on: [wbe]"))

    code, out, _ = update("web", "--json")

    assert code == ExitCode.CONFIG_INVALID
    document = json.loads(out)
    assert document["valid"] is False
    assert document["diagnostics"][0]["suggestion"] == "web"


@pytest.mark.parametrize("argv", [(), ("--all", "web")])
def test_specs_or_all_is_required_and_exclusive(
    update: UpdateRunner, fake: ProvisioningFake, argv: tuple[str, ...]
) -> None:
    code, _, err = update(*argv)

    assert code == ExitCode.USAGE
    assert "error: " in err
    assert fake.calls == []


def test_plan_and_wait_cannot_be_combined(update: UpdateRunner) -> None:
    with pytest.raises(SystemExit) as exited:
        update("--plan", "--wait", "web")
    assert exited.value.code == ExitCode.USAGE


def test_help_says_that_services_not_named_are_stopped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["update_services", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "STOP every other dynamic service" in out
