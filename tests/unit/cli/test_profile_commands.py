"""`ozwald profile` and `ozwald footprints` end to end: argv in, a real in-process gRPC
agent (the in-memory fake), progress on stderr, a table or JSON on stdout, exit codes."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from ozwald.agent.v1 import footprint_pb2 as F
from ozwald.agent.v1 import plan_pb2 as P
from ozwald.common.v1 import service_spec_pb2
from ozwald.common.v1.host_profile_pb2 import HostProfile
from ozwald.common.v1.service_spec_pb2 import ServiceSpec

from ozwald_sdk.cli.main import main
from ozwald_sdk.cli.render_footprints import render_footprints
from ozwald_sdk.errors import ExitCode
from ozwald_sdk.testing import serve_agent
from tests.unit.cli.profiling_fake import footprint_for
from tests.unit.cli.provisioning_fake import CONFIG, ProvisioningFake, refusal

OPENAI_CONFIG = (
    CONFIG
    + """\
      chat:
        image: ozwald/tiny:local
        connector_port: 8000
        openai: {api: chat}
        varieties:
          cpu:
            openai: {model: tiny-llama}
"""
)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "ozwald.yml"
    path.write_text(OPENAI_CONFIG)
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


class Runner:
    def __init__(self, capsys: pytest.CaptureFixture[str], address: str, config: Path) -> None:
        self.capsys, self.address, self.config = capsys, address, config

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        config = ["--config", str(self.config)] if "profile" in argv else []
        code = main(["--agent", self.address, *argv, *config])
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture
def ozwald(capsys: pytest.CaptureFixture[str], address: str, config: Path) -> Runner:
    return Runner(capsys, address, config)


def test_profile_shows_progress_on_stderr_and_a_table_of_footprints(
    ozwald: Runner, fake: ProvisioningFake
) -> None:
    code, out, err = ozwald("profile", "web", "web[][loud]")

    assert code == ExitCode.OK
    # Not a terminal: one line per step, a waiting service's repeats left out.
    assert "[1/2] default:web  admitting" in err
    assert "[2/2] default:web[][loud]  done" in err
    assert err.count("waiting for ready") == 2  # once per service
    lines = out.splitlines()
    # No GPU was measured: no VRAM column.
    assert lines[0].split() == [
        "SERVICE", "VARIETY/PROFILE", "READY", "PEAK", "MEM", "CPU", "MAX/AVG", "WARM-UP",
    ]  # fmt: skip
    assert lines[1].split() == ["default:web", "-/-", "3.5s", "2.0", "GiB", "1.50/0.75", "none"]
    assert lines[2].split()[:2] == ["default:web", "-/loud"]
    assert "default:web[][loud]: measured" in out and "on fakehost" in out
    assert all(len(line) <= 80 for line in out.splitlines())
    (request,) = fake.profiling.profiled
    assert [(s.name, s.profile) for s in request.services] == [("web", ""), ("web", "loud")]
    assert request.warmup_requests == 8


def test_profile_json_carries_every_footprint_and_the_warm_up_sent(
    ozwald: Runner, fake: ProvisioningFake
) -> None:
    code, out, err = ozwald("--json", "profile", "chat", "--warmup", "3")

    assert code == ExitCode.OK
    document = json.loads(out)
    (footprint,) = document["footprints"]
    assert footprint["service"] == "chat"
    assert footprint["variety"] == "cpu"
    assert footprint["peak_memory_bytes"] == str(2 * 1024**3)
    assert footprint["warm_up"]["api"] == "OPEN_AI_API_CHAT"
    assert document["failed"] == []
    assert "warming up" in err and "[#####" in err
    (request,) = fake.profiling.profiled
    (spec,) = request.services
    # The variety's model merged over the base's api.
    assert spec.openai == service_spec_pb2.OpenAiEndpoint(
        api=service_spec_pb2.OPEN_AI_API_CHAT, model="tiny-llama"
    )
    assert request.warmup_requests == 3


def test_profile_with_warmup_0_asks_for_no_warm_up(ozwald: Runner, fake: ProvisioningFake) -> None:
    code, _, err = ozwald("profile", "chat", "--warmup", "0")

    assert code == ExitCode.OK
    assert fake.profiling.profiled[0].HasField("warmup_requests")
    assert fake.profiling.profiled[0].warmup_requests == 0
    assert "warming up" not in err


def test_a_refused_profile_prints_the_plan_and_exits_11(
    ozwald: Runner, fake: ProvisioningFake
) -> None:
    fake.refusals["big"] = refusal(
        "big",
        P.REFUSAL_REASON_INSUFFICIENT_MEMORY,
        "needs 64.0 GiB memory (declared); 18.0 GiB is free",
        "lower the service's memory",
    )

    code, out, err = ozwald("profile", "big")

    assert code == ExitCode.ADMISSION_REFUSED
    assert out == ""
    assert "error: nothing was started: needs 64.0 GiB memory" in err
    assert "lower the service's memory" in err
    assert fake.profiling.footprints == {}


def test_a_failed_service_is_reported_with_its_logs_and_exits_12(
    ozwald: Runner, fake: ProvisioningFake
) -> None:
    fake.profiling.profile_failures["worker"] = (
        "health check never passed: HTTP 503",
        ("loading", "still loading"),
    )

    code, out, _ = ozwald("profile", "web", "worker")

    assert code == ExitCode.SERVICE_FAILED
    assert "default:worker was not profiled: health check never passed: HTTP 503" in out
    assert "still loading" in out
    assert [k[1] for k in fake.profiling.footprints] == ["web"]

    code, out, _ = ozwald("--json", "profile", "worker")
    assert code == ExitCode.SERVICE_FAILED
    (failure,) = json.loads(out)["failed"]
    assert failure == {
        "selector": "default:worker",
        "detail": "health check never passed: HTTP 503",
        "last_log_lines": ["loading", "still loading"],
        "refusals": [],
    }


def test_profile_all_names_every_service_once_per_profile_with_the_hosts_variety(
    ozwald: Runner, fake: ProvisioningFake
) -> None:
    code, _, _ = ozwald("profile", "--all", "--warmup", "0")

    assert code == ExitCode.OK
    (request,) = fake.profiling.profiled
    assert [(s.name, s.variety, s.profile) for s in request.services] == [
        ("web", "", ""),
        ("web", "", "loud"),
        ("worker", "", ""),
        ("embed", "cpu", ""),
        ("keeper", "", ""),
        ("big", "", ""),
        ("chat", "cpu", ""),
    ]


def test_profile_refuses_naming_the_same_combination_twice(ozwald: Runner) -> None:
    code, _, err = ozwald("profile", "web", "default:web")

    assert code == ExitCode.CONFIG_INVALID
    assert "named twice" in err


def test_footprints_lists_then_forgets(ozwald: Runner, fake: ProvisioningFake) -> None:
    assert ozwald("profile", "web", "web[][loud]", "embed")[0] == ExitCode.OK

    code, out, _ = ozwald("footprints")
    assert code == ExitCode.OK
    assert [line.split()[0] for line in out.splitlines()[1:4]] == ["default:embed"] + [
        "default:web"
    ] * 2

    code, out, _ = ozwald("--json", "footprints")
    assert [(f["service"], f.get("profile", "")) for f in json.loads(out)["footprints"]] == [
        ("embed", ""),
        ("web", ""),
        ("web", "loud"),
    ]

    code, out, _ = ozwald("footprints", "--forget", "web[][loud]")
    assert code == ExitCode.OK
    assert "Forgot 1 footprint:" in out and "default:web[][loud]" in out
    code, out, _ = ozwald("--json", "footprints", "--forget", "web")
    assert [f["service"] for f in json.loads(out)["forgotten"]] == ["web"]
    code, out, _ = ozwald("footprints", "--forget", "web")
    assert "nothing forgotten" in out
    assert list(fake.profiling.footprints) == [("default", "embed", "cpu", "")]


def test_footprints_says_how_to_get_one_when_there_is_none(ozwald: Runner) -> None:
    code, out, _ = ozwald("footprints")

    assert code == ExitCode.OK
    assert "No footprints stored on this host; `ozwald profile SPEC` measures one." in out


def test_a_gpu_footprint_shows_its_vram_and_its_notes() -> None:
    footprint = footprint_for(
        ServiceSpec(realm="default", name="llm", variety="nvidia"), peak_memory=6 * 1024**3
    )
    footprint.peak_vram_bytes_per_gpu = 70 * 1024**3
    footprint.gpus.add(uuid="GPU-1", index=0, name="NVIDIA H100 80GB HBM3", peak_bytes=70 * 1024**3)
    footprint.memory_peak_source = F.MEMORY_PEAK_SOURCE_SAMPLED_USAGE
    footprint.notes.append("VRAM of GPU-2: the driver does not report per-process memory")

    text = render_footprints([footprint], datetime.datetime(2027, 1, 15, 9, tzinfo=datetime.UTC))

    lines = text.splitlines()
    assert "VRAM/GPU" in lines[0]
    assert lines[1].split() == [
        "default:llm", "nvidia/-", "3.5s", "6.0", "GiB*", "1.50/0.75", "70.0", "GiB", "none",
    ]  # fmt: skip
    assert "default:llm[nvidia]: measured 1h ago (2027-01-15 08:00 UTC) on fakehost" in text
    assert "note: VRAM of GPU-2: the driver does not report per-process memory" in text
    assert "* sampled every 0.5 s" in text
    assert all(len(line) <= 80 for line in lines)
