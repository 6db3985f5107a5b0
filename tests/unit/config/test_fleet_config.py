"""The fleet section of ozwald.yml: its shape, its references to realms and services, and
its resolution into the Deployment messages `ozwald apply` sends."""

from __future__ import annotations

from pathlib import Path

import pytest
from ozwald.common.v1 import gpu_pb2

from ozwald_sdk.config import ConfigInvalidError, load_config
from ozwald_sdk.config.deployments import fleet_realms, resolve_deployments
from ozwald_sdk.config.schema import json_schema
from tests.unit.config.support import ConfigWriter, position, rendered

GIB = 1024**3

SERVICES = """\
version: 1
variety_preference: [cpu, nvidia, amdgpu]
realms:
  default:
    services:
      embed:
        image: ozwald/embed:1
        connector_port: 8000
        varieties:
          nvidia:
            resources: {gpus: {count: 1}}
          cpu: {}
        profiles:
          small:
            environment: {MAX_LEN: "512"}
          tp2:
            resources: {gpus: {count: 2}}
      plain:
        image: ozwald/tiny:local
      web:
        image: ozwald/web:1
        depends_on: [plain]
      keeper:
        image: ozwald/tiny:local
        persistent: true
"""


def test_variety_any_sends_one_candidate_per_variety_in_preference_order(
    write: ConfigWriter,
) -> None:
    path = write(
        SERVICES
        + """\
fleet:
  deployments:
    embed-fleet:
      service: embed
      profile: small
      replicas: 2
      constraints:
        gpu_model: H100
        min_vram: 40GiB
        host_labels: {zone: a, rack: 7}
        spread: true
"""
    )
    config = load_config(path)

    [deployment] = resolve_deployments(config)

    assert deployment.name == "embed-fleet"
    assert (deployment.realm, deployment.service, deployment.replicas) == ("default", "embed", 2)
    # variety_preference says cpu first; the service defines nvidia before cpu.
    assert [c.variety for c in deployment.candidates] == ["cpu", "nvidia"]
    assert {c.name for c in deployment.candidates} == {"embed-fleet"}
    assert {c.profile for c in deployment.candidates} == {"small"}
    assert all(c.environment["MAX_LEN"] == "512" for c in deployment.candidates)
    assert deployment.candidates[1].resources.gpus.count == 1
    constraints = deployment.constraints
    assert constraints.gpu_model == "H100"
    assert constraints.min_vram_bytes == 40 * GIB
    assert dict(constraints.host_labels) == {"zone": "a", "rack": "7"}
    assert constraints.spread_across_hosts
    assert constraints.gpu_vendor == gpu_pb2.GPU_VENDOR_UNSPECIFIED
    assert fleet_realms(config) == ["default"]


def test_a_named_variety_sends_one_candidate_and_defaults_fill_the_rest(
    write: ConfigWriter,
) -> None:
    path = write(
        SERVICES
        + """\
fleet:
  deployments:
    gpu-embed: {service: embed, variety: nvidia, constraints: {gpu_vendor: nvidia}}
    tiny: {service: plain}
"""
    )

    gpu, tiny = resolve_deployments(load_config(path))

    assert [c.variety for c in gpu.candidates] == ["nvidia"]
    assert gpu.constraints.gpu_vendor == gpu_pb2.GPU_VENDOR_NVIDIA
    assert gpu.replicas == 1
    # A service without varieties runs as itself: one candidate, no variety.
    assert [(c.name, c.variety, c.image) for c in tiny.candidates] == [
        ("tiny", "", "ozwald/tiny:local")
    ]
    assert not tiny.constraints.spread_across_hosts


def test_any_leaves_out_varieties_a_profile_cannot_build_with(write: ConfigWriter) -> None:
    path = write(SERVICES + "fleet:\n  deployments:\n    big: {service: embed, profile: tp2}\n")

    [deployment] = resolve_deployments(load_config(path))

    # tp2 asks for two GPUs, which the cpu variety cannot give.
    assert [c.variety for c in deployment.candidates] == ["nvidia"]
    assert deployment.candidates[0].resources.gpus.count == 2


def test_any_with_a_gpu_vendor_keeps_only_varieties_that_can_run_there(
    write: ConfigWriter,
) -> None:
    path = write(
        SERVICES
        + "fleet:\n  deployments:\n    e: {service: embed, constraints: {gpu_vendor: amd}}\n"
    )

    [deployment] = resolve_deployments(load_config(path))

    assert [c.variety for c in deployment.candidates] == ["cpu"]


def test_replicas_zero_is_kept_and_an_empty_fleet_section_resolves_to_nothing(
    write: ConfigWriter,
) -> None:
    path = write(SERVICES + "fleet:\n  deployments:\n    idle: {service: plain, replicas: 0}\n")
    [idle] = resolve_deployments(load_config(path))
    assert idle.replicas == 0

    empty = write(SERVICES + "fleet: {deployments: {}}\n")
    assert resolve_deployments(load_config(empty)) == []


def test_a_file_without_a_fleet_section_cannot_be_applied(write: ConfigWriter) -> None:
    path = write(SERVICES)

    with pytest.raises(ConfigInvalidError) as raised:
        resolve_deployments(load_config(path))

    assert "no fleet section" in raised.value.message
    assert "fleet.deployments" in raised.value.remedy


def test_unknown_names_are_located_with_did_you_mean(write: ConfigWriter) -> None:
    path = write(
        SERVICES
        + """\
fleet:
  deployments:
    a: {service: embd}
    b: {service: embed, variety: amdgpu}
    c: {service: embed, profile: smal}
    d: {service: embed, realm: defualt}
    e: {service: embed, variety: nvidai}
"""
    )

    problems = rendered(path)

    assert problems == [
        f"{position(path, 'embd')}: fleet.deployments.a.service: no service 'embd' in realm "
        "'default' (it has: embed, plain, web, keeper); did you mean 'embed'?",
        f"{position(path, 'amdgpu}')}: fleet.deployments.b.variety: service 'embed' has no "
        "variety 'amdgpu' (it has: nvidia, cpu)",
        f"{position(path, 'smal}')}: fleet.deployments.c.profile: service 'embed' has no "
        "profile 'smal' (it has: small, tp2); did you mean 'small'?",
        f"{position(path, 'defualt')}: fleet.deployments.d.realm: no realm 'defualt' in the "
        "file (it has: default); did you mean 'default'?",
        f"{position(path, 'nvidai')}: fleet.deployments.e.variety: expected 'any', 'nvidia', "
        "'amdgpu' or 'cpu', found 'nvidai'; did you mean 'nvidia'?",
    ]


def test_services_the_fleet_cannot_place_are_refused_saying_why(write: ConfigWriter) -> None:
    path = write(
        SERVICES
        + """\
fleet:
  deployments:
    w: {service: web}
    k: {service: keeper}
"""
    )

    problems = rendered(path)

    assert len(problems) == 2
    assert problems[0].startswith(f"{position(path, 'web}')}: fleet.deployments.w.service:")
    assert "depends on plain (depends_on)" in problems[0]
    assert "cannot depend on services placed elsewhere" in problems[0]
    assert problems[1].startswith(f"{position(path, 'keeper}')}: fleet.deployments.k.service:")
    assert "is persistent" in problems[1]


def test_the_shape_is_strict_and_replicas_cannot_be_negative(write: ConfigWriter) -> None:
    path = write(
        SERVICES
        + """\
fleet:
  deployments:
    Bad_Name: {service: plain}
    neg: {service: plain, replicas: -1}
    typo: {service: plain, constraints: {spred: true}}
  deploy: {}
"""
    )

    problems = rendered(path)

    assert problems == [
        f"{position(path, 'Bad_Name')}: fleet.deployments.Bad_Name: expected a deployment name "
        "of lowercase letters, digits and '-', starting with a letter, not ending with '-', at "
        "most 56 characters, found 'Bad_Name'",
        f"{position(path, '-1')}: fleet.deployments.neg.replicas: expected a number of at "
        "least 0, found -1",
        f"{position(path, 'spred')}: fleet.deployments.typo.constraints.spred: unknown key "
        "'spred'; did you mean 'spread'?",
        f"{position(path, 'deploy:')}: fleet.deploy: unknown key 'deploy'; did you mean "
        "'deployments'?",
    ]


def test_constraints_that_contradict_the_variety_are_refused(write: ConfigWriter) -> None:
    path = write(
        SERVICES
        + """\
fleet:
  deployments:
    a: {service: embed, variety: nvidia, constraints: {gpu_vendor: amd}}
    b: {service: embed, variety: cpu, constraints: {min_vram: 8GiB}}
"""
    )

    problems = rendered(path)

    assert (
        "fleet.deployments.a.constraints.gpu_vendor: the nvidia variety runs on nvidia "
        in (problems[0])
    )
    assert "fleet.deployments.b.constraints.min_vram: the cpu variety uses no GPU" in problems[1]


def test_several_realms_without_default_need_the_realm_named(write: ConfigWriter) -> None:
    path = write(
        """\
version: 1
realms:
  blue:
    services: {embed: {image: x}}
  green:
    services: {embed: {image: x}}
fleet:
  deployments:
    e: {service: embed}
    g: {service: embed, realm: green}
"""
    )

    [problem] = rendered(path)

    assert "fleet.deployments.e.service: the file has several realms (blue, green)" in problem
    assert "realm: blue" in problem


def test_a_service_in_another_realm_is_pointed_to(write: ConfigWriter) -> None:
    path = write(
        """\
version: 1
realms:
  default:
    services: {embed: {image: x}}
  lab:
    services: {probe: {image: y}}
fleet:
  deployments:
    p: {service: probe}
"""
    )

    [problem] = rendered(path)

    assert "no service 'probe' in realm 'default'; it is in realm 'lab': write realm: lab" in (
        problem
    )


def test_a_broken_service_is_reported_once_not_again_by_its_deployment(
    write: ConfigWriter, tmp_path: Path
) -> None:
    path = write(
        """\
version: 1
realms:
  default:
    services:
      embed:
        image: x
        networks: [nowhere]
fleet:
  deployments:
    e: {service: embed}
"""
    )

    problems = rendered(path)

    assert len(problems) == 1
    assert "no network 'nowhere'" in problems[0]


def test_the_schema_lets_editors_complete_the_fleet_section() -> None:
    schema = json_schema()
    fleet = schema["$defs"]["FleetSection"]
    deployment = schema["$defs"]["DeploymentDeclaration"]
    assert "deployments" in fleet["properties"]
    assert deployment["additionalProperties"] is False
    assert set(deployment["properties"]) == {
        "service",
        "realm",
        "variety",
        "profile",
        "replicas",
        "constraints",
        "strategy",
        "update",
    }


def test_an_update_strategy_reaches_the_deployment(write: ConfigWriter) -> None:
    path = write(
        SERVICES
        + """\
fleet:
  deployments:
    e:
      service: embed
      update: {max_parallel: 2, min_healthy_time: 15s, healthy_deadline: 2m,
               progress_deadline: 5m, auto_revert: true, canaries: 1, auto_promote: true}
"""
    )
    [deployment] = resolve_deployments(load_config(path))
    update = deployment.update
    assert (update.max_parallel, update.canaries) == (2, 1)
    assert update.auto_revert and update.auto_promote
    assert update.min_healthy_time.ToTimedelta().total_seconds() == 15
    assert update.healthy_deadline.ToTimedelta().total_seconds() == 120
    assert update.progress_deadline.ToTimedelta().total_seconds() == 300


def test_a_deployment_without_update_leaves_the_orchestrator_s_defaults(
    write: ConfigWriter,
) -> None:
    path = write(
        SERVICES
        + """\
fleet:
  deployments:
    e: {service: embed}
"""
    )
    [deployment] = resolve_deployments(load_config(path))
    assert not deployment.HasField("update")


def test_a_progress_deadline_shorter_than_the_healthy_deadline_is_located(
    write: ConfigWriter,
) -> None:
    path = write(
        SERVICES
        + """\
fleet:
  deployments:
    e:
      service: embed
      update: {healthy_deadline: 5m, progress_deadline: 1m}
"""
    )
    problems = rendered(path)
    assert len(problems) == 1
    assert "fleet.deployments.e.update" in problems[0]
    assert "progress_deadline (60 s) must not be shorter than healthy_deadline" in problems[0]
