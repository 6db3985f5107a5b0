"""`ozwald apply`, `hosts`, `deployments`, `instances`, `explain`, `drift` and `events` end
to end against a real in-process FleetService: what they send, what people read, the
JSON machines read, and the exit codes of refusals."""

from __future__ import annotations

import datetime
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from ozwald.common.v1 import gpu_pb2
from ozwald.common.v1.error_reason_pb2 import ERROR_REASON_DEPLOYMENT_INVALID
from ozwald.common.v1.host_profile_pb2 import CpuInfo, HostProfile, MemoryInfo
from ozwald.orchestrator.v1 import fleet_service_pb2 as pb
from ozwald.orchestrator.v1 import fleet_state_pb2 as FS
from ozwald.orchestrator.v1 import placement_pb2

from ozwald_sdk.cli.main import main
from ozwald_sdk.cli.render_fleet_state import render_instances
from ozwald_sdk.errors import ExitCode
from ozwald_sdk.testing import Failure
from tests.unit.cli.fleet_fake import NO_HOST_REASON, FleetFake, serve_fleet, stamp

GIB = 1024**3
CONFIG = """\
version: 1
variety_preference: [nvidia, cpu]
realms:
  default:
    services:
      embed:
        image: ozwald/embed:1
        varieties:
          cpu: {}
          nvidia: {resources: {gpus: {count: 1}}}
      tiny:
        image: ozwald/tiny:local
fleet:
  deployments:
    embed:
      service: embed
      replicas: 2
      constraints: {min_vram: 40GiB, spread: true}
    tiny: {service: tiny, variety: any, replicas: 1}
"""


@pytest.fixture
def fake() -> FleetFake:
    return FleetFake()


@pytest.fixture
def address(fake: FleetFake) -> Iterator[str]:
    with serve_fleet(fake) as address:
        yield address


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.yml"
    path.write_text(CONFIG)
    return path


class Runner:
    def __init__(self, capsys: pytest.CaptureFixture[str], address: str) -> None:
        self.capsys, self.address = capsys, address

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        code = main(["--orchestrator", self.address, *argv])
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture
def ozwald(capsys: pytest.CaptureFixture[str], address: str) -> Runner:
    return Runner(capsys, address)


def host(
    host_id: str, *, gpus: int = 0, state: FS.HostState.ValueType = FS.HOST_STATE_READY
) -> FS.Host:
    profile = HostProfile(
        hostname=host_id,
        cpu=CpuInfo(logical_cores=16, usable_cores=16),
        memory=MemoryInfo(total_bytes=64 * GIB),
    )
    if gpus:
        profile.gpu_vendors.add(
            vendor=gpu_pb2.GPU_VENDOR_NVIDIA,
            present=True,
            devices=[
                gpu_pb2.GpuDevice(vendor=gpu_pb2.GPU_VENDOR_NVIDIA, index=i, name="NVIDIA H100")
                for i in range(gpus)
            ],
        )
    minute_ago = stamp(datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=3))
    return FS.Host(
        id=host_id,
        state=state,
        profile=profile,
        labels={"zone": "a"},
        connected=state == FS.HOST_STATE_READY,
        last_seen=minute_ago,
        state_since=minute_ago,
        joined_at=minute_ago,
        assignment_version=3,
        applied_assignment_version=2 if state == FS.HOST_STATE_DOWN else 3,
    )


# apply ------------------------------------------------------------------------------


def test_apply_plan_shows_pending_instances_and_stores_nothing(
    ozwald: Runner, fake: FleetFake, config: Path
) -> None:
    code, out, err = ozwald("apply", "-f", str(config), "--plan")

    assert code == ExitCode.OK, err
    assert out.splitlines()[0] == "Plan against desired-state version 0 (nothing is changed):"
    assert "  + create embed (2 instances)" in out
    assert f"embed-0  PENDING: {NO_HOST_REASON}" in out
    assert "3 instances cannot be placed now" in out
    assert "`ozwald explain DEPLOYMENT` says why" in out
    assert fake.deployments == {}


def test_apply_sends_one_candidate_per_variety_and_every_realm_of_the_file(
    ozwald: Runner, fake: FleetFake, config: Path
) -> None:
    fake.add_host(host("h1", gpus=1))

    code, out, err = ozwald("apply", "-f", str(config))

    assert code == ExitCode.OK, err
    [call] = fake.calls_to("ApplyDeployments")
    request: pb.ApplyDeploymentsRequest = call.request
    assert list(request.realms) == ["default"]
    embed, tiny = request.deployments
    assert [c.variety for c in embed.candidates] == ["nvidia", "cpu"]
    assert {c.name for c in embed.candidates} == {"embed"}
    assert embed.constraints.min_vram_bytes == 40 * GIB
    assert embed.constraints.spread_across_hosts
    assert [c.variety for c in tiny.candidates] == [""]
    assert out.splitlines()[0] == "Applied as desired-state version 1:"
    assert "embed-0  -> h1 (nvidia)" in out
    assert "`ozwald events -f --after 0`" in out


def test_applying_the_same_file_twice_changes_nothing(
    ozwald: Runner, fake: FleetFake, config: Path
) -> None:
    ozwald("apply", "-f", str(config))

    code, out, _ = ozwald("apply", "-f", str(config))

    assert code == ExitCode.OK
    assert "  = keep embed (2 instances)" in out
    assert fake.desired_version == 1


def test_apply_json_is_the_response_in_the_protobuf_mapping(ozwald: Runner, config: Path) -> None:
    code, out, _ = ozwald("apply", "-f", str(config), "--json")

    assert code == ExitCode.OK
    document = json.loads(out)
    assert document["event_sequence"] == "0"
    assert document["plan"]["desired_version"] == "1"
    assert [c["kind"] for c in document["plan"]["changes"]] == [
        "DEPLOYMENT_CHANGE_KIND_CREATE",
        "DEPLOYMENT_CHANGE_KIND_CREATE",
    ]
    assert document["plan"]["changes"][0]["instances"][0]["reason"] == NO_HOST_REASON


def test_an_invalid_file_exits_10_before_anything_is_sent(
    ozwald: Runner, fake: FleetFake, tmp_path: Path
) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(CONFIG.replace("service: embed", "service: embd"))

    code, _, err = ozwald("apply", "-f", str(path))
    json_code, json_out, _ = ozwald("apply", "-f", str(path), "--json")

    assert code == json_code == ExitCode.CONFIG_INVALID
    assert "fleet.deployments.embed.service: no service 'embd'" in err
    assert "did you mean 'embed'?" in err
    assert json.loads(json_out)["valid"] is False
    assert not fake.calls_to("ApplyDeployments")


def test_a_file_without_a_fleet_section_exits_10(
    ozwald: Runner, fake: FleetFake, tmp_path: Path
) -> None:
    path = tmp_path / "no-fleet.yml"
    path.write_text(CONFIG.split("fleet:", maxsplit=1)[0])

    code, _, err = ozwald("apply", "-f", str(path))

    assert code == ExitCode.CONFIG_INVALID
    assert "has no fleet section" in err
    assert not fake.calls_to("ApplyDeployments")


def test_a_deployment_the_orchestrator_refuses_exits_18(
    ozwald: Runner, fake: FleetFake, config: Path
) -> None:
    fake.fail_next(
        Failure(
            grpc.StatusCode.INVALID_ARGUMENT,
            "deployment 'embed' asks for 2 replicas spread across hosts of a fleet of 1",
            reason=ERROR_REASON_DEPLOYMENT_INVALID,
            remedy="lower replicas or drop spread",
            metadata={"deployment": "embed"},
        )
    )

    code, _, err = ozwald("apply", "-f", str(config))

    assert code == ExitCode.DEPLOYMENT_INVALID
    assert "error: deployment 'embed' asks for 2 replicas" in err
    assert "hint: lower replicas or drop spread" in err


def test_no_orchestrator_exits_3_saying_how_to_start_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, config: Path
) -> None:
    missing = tmp_path / "orchestrator.sock"

    code = main(["apply", "-f", str(config), "--orchestrator", str(missing)])

    assert code == ExitCode.AGENT_UNREACHABLE
    err = capsys.readouterr().err
    assert f"no Ozwald orchestrator answers at unix://{missing}" in err
    assert "ozwald-orchestrator" in err


# reading the fleet ------------------------------------------------------------------


def test_hosts_table_reads_for_people_and_json_for_machines(
    ozwald: Runner, fake: FleetFake
) -> None:
    fake.add_host(host("gpu-01", gpus=2))
    fake.add_host(host("cpu-01", state=FS.HOST_STATE_DOWN))

    code, out, _ = ozwald("hosts")
    json_code, json_out, _ = ozwald("hosts", "--json")

    assert code == json_code == ExitCode.OK
    lines = out.splitlines()
    assert lines[0].split() == [
        "HOST",
        "STATE",
        "SINCE",
        "SEEN",
        "GPUS",
        "MEMORY",
        "CPUS",
        "ASSIGNED",
        "LABELS",
    ]
    assert lines[1].split()[:4] == ["gpu-01", "READY", "3m", "3m"]
    assert "2x H100" in lines[1]
    assert "64.0 GiB" in lines[1]
    assert "zone=a" in lines[1]
    assert lines[2].split()[:2] == ["cpu-01", "DOWN"]
    assert "v2 -> v3" in lines[2]
    assert all(len(line) <= 80 for line in lines)
    hosts = json.loads(json_out)["hosts"]
    assert [(h["id"], h["state"]) for h in hosts] == [
        ("gpu-01", "HOST_STATE_READY"),
        ("cpu-01", "HOST_STATE_DOWN"),
    ]


def test_no_hosts_says_how_agents_join(ozwald: Runner) -> None:
    _, out, _ = ozwald("hosts")

    assert "No host has joined the fleet yet." in out
    assert "ozwald ca issue --role agent" in out


def test_deployments_lists_them_and_shows_one_with_its_instances(
    ozwald: Runner, config: Path
) -> None:
    ozwald("apply", "-f", str(config))

    code, table, _ = ozwald("deployments")
    one_code, one, _ = ozwald("deployments", "embed")
    json_code, json_out, _ = ozwald("deployments", "embed", "--json")

    assert code == one_code == json_code == ExitCode.OK
    rows = table.splitlines()
    assert rows[0].split() == [
        "DEPLOYMENT",
        "SERVICE",
        "VARIETIES",
        "READY",
        "PENDING",
        "VERSION",
        "AGE",
    ]
    assert rows[1].split()[:6] == ["embed", "default:embed", "nvidia,cpu", "0/2", "2", "v1"]
    assert rows[2].split()[:6] == ["tiny", "default:tiny", "-", "0/1", "1", "v1"]
    assert one.startswith("Deployment embed\n")
    assert "at least 40.0 GiB VRAM per GPU; at most one per host" in one
    assert "embed-1" in one and "PENDING" in one
    document = json.loads(json_out)
    assert document["deployment"]["name"] == "embed"
    assert [i["id"] for i in document["instances"]] == ["embed-0", "embed-1"]


def test_an_unknown_deployment_exits_19(ozwald: Runner) -> None:
    for argv in (("deployments", "nope"), ("explain", "nope")):
        code, _, err = ozwald(*argv)

        assert code == ExitCode.DEPLOYMENT_NOT_FOUND
        assert "error: no deployment named 'nope'" in err


def test_instances_filters_by_deployment_and_shows_why_they_wait(
    ozwald: Runner, fake: FleetFake, config: Path
) -> None:
    ozwald("apply", "-f", str(config))

    code, out, _ = ozwald("instances", "--deployment", "tiny")
    json_code, json_out, _ = ozwald("instances", "--host", "nowhere", "--json")

    assert code == json_code == ExitCode.OK
    lines = out.splitlines()
    assert lines[0].split() == ["INSTANCE", "HOST", "VARIETY", "STATE", "SINCE", "MOVES", "REASON"]
    assert lines[1].split()[:4] == ["tiny-0", "-", "-", "PENDING"]
    assert NO_HOST_REASON in out
    assert [c.request.deployment for c in fake.calls_to("ListInstances")] == ["tiny", ""]
    assert json.loads(json_out) == {"instances": []}


def test_a_long_reason_is_cut_in_the_table_and_shown_whole_below() -> None:
    reason = (
        "no host can take it: 3 hosts have no NVIDIA GPU with 40 GiB, 1 host is DOWN, "
        "and spread allows one instance per host"
    )
    instance = FS.Instance(
        id="embed-1", deployment="embed", state=FS.INSTANCE_STATE_PENDING, reason=reason
    )

    out = render_instances([instance], datetime.datetime.now(datetime.UTC))

    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert "…" in lines[1]
    below = lines[lines.index("") + 1 :]
    assert " ".join(line.strip() for line in below) == f"embed-1: {reason}"


def test_explain_says_where_and_why(ozwald: Runner, fake: FleetFake, config: Path) -> None:
    ozwald("apply", "-f", str(config))
    fake.explanations["embed"] = pb.ExplainDeploymentResponse(
        strategy="binpack",
        instances=[
            placement_pb2.InstanceExplanation(
                instance="embed-0",
                host_id="gpu-01",
                summary="placed on gpu-01: the tightest fit for 1 GPU",
                best=[
                    placement_pb2.HostVerdict(
                        host_id="gpu-01", feasible=True, score=0.92, variety="nvidia"
                    )
                ],
            ),
            placement_pb2.InstanceExplanation(
                instance="embed-1",
                summary="no host can take it",
                rejections=[
                    placement_pb2.RejectionSummary(
                        filter="spread",
                        hosts=1,
                        examples=["gpu-01 already runs embed-0"],
                    ),
                    placement_pb2.RejectionSummary(
                        filter="gpu-vram",
                        hosts=2,
                        examples=["cpu-01: no GPU with 40.0 GiB (has none)"],
                    ),
                ],
            ),
        ],
    )

    code, out, _ = ozwald("explain", "embed")
    json_code, json_out, _ = ozwald("explain", "embed", "--json")

    assert code == json_code == ExitCode.OK
    assert out.splitlines()[0] == "Deployment embed, placed by the binpack strategy:"
    assert "  embed-0  on gpu-01" in out
    assert "gpu-01 as nvidia, score 0.92" in out
    assert "  embed-1  PENDING" in out
    assert "spread: rejected 1 host" in out
    assert "gpu-vram: rejected 2 hosts" in out
    assert "cpu-01: no GPU with 40.0 GiB (has none)" in out
    assert json.loads(json_out)["instances"][1]["rejections"][0]["filter"] == "spread"


def test_drift_lists_differences_or_says_there_are_none(ozwald: Runner, fake: FleetFake) -> None:
    _, none, _ = ozwald("drift")
    fake.drift.append(
        pb.DriftItem(
            kind=pb.DRIFT_KIND_MISSING,
            host_id="h1",
            instance="embed-0",
            detail="assigned, not reported running",
            age_seconds=75,
        )
    )

    code, out, _ = ozwald("drift")
    json_code, json_out, _ = ozwald("drift", "--json")

    assert none == "No drift: every host runs exactly what it is assigned.\n"
    assert code == json_code == ExitCode.OK
    assert out.splitlines()[1].split()[:4] == ["missing", "h1", "embed-0", "1m"]
    assert "1 difference." in out
    assert json.loads(json_out)["items"][0]["kind"] == "DRIFT_KIND_MISSING"


def test_events_prints_the_stored_ones_in_order_or_json_lines(
    ozwald: Runner, fake: FleetFake
) -> None:
    fake.emit("host-joined", "h1 joined with 2 GPUs", host_id="h1")
    fake.emit(
        "instance-placed", "placed on h1", deployment="embed", instance="embed-0", host_id="h1"
    )

    code, out, _ = ozwald("events")
    after_code, after, _ = ozwald("events", "--after", "1", "--json")

    assert code == after_code == ExitCode.OK
    lines = out.splitlines()
    assert lines[0].startswith("#1 ")
    assert lines[0].endswith("host-joined @h1: h1 joined with 2 GPUs")
    assert lines[1].endswith("instance-placed embed/embed-0 @h1: placed on h1")
    [document] = [json.loads(line) for line in after.splitlines()]
    assert document["sequence"] == "2"
    assert document["kind"] == "instance-placed"
    assert fake.calls_to("WatchEvents")[0].request.stored_only


def test_the_orchestrator_address_works_after_the_subcommand_too(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "elsewhere.sock"

    code = main(["hosts", "--orchestrator", str(missing), "--timeout", "2"])

    assert code == ExitCode.AGENT_UNREACHABLE
    assert str(missing) in capsys.readouterr().err


def test_config_text_from_the_docs_applies(ozwald: Runner, tmp_path: Path) -> None:
    path = tmp_path / "doc.yml"
    path.write_text(
        textwrap.dedent(
            """\
            version: 1
            realms:
              default:
                services:
                  embed:
                    image: ozwald/vllm-cpu:local
                    varieties: {cpu: {}, nvidia: {resources: {gpus: {count: 1}}}}
                    profiles: {small: {}}
            fleet:
              deployments:
                embed:
                  service: embed
                  realm: default
                  variety: any
                  profile: small
                  replicas: 2
                  constraints:
                    gpu_vendor: nvidia
                    gpu_model: H100
                    min_vram: 40GiB
                    host_labels: {zone: a}
                    spread: true
            """
        )
    )

    code, out, err = ozwald("apply", "-f", str(path), "--plan")

    assert code == ExitCode.OK, err
    assert "+ create embed (2 instances)" in out
