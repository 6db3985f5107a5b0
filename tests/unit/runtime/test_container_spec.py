"""ServiceSpec -> docker create arguments, for every variety, and as the engine will see them.

Besides the kwargs themselves, `_wire` runs them through the SDK's own conversion to the
Engine API's JSON (no engine needed), so a kwarg the SDK rejects or renames fails here.
"""

from __future__ import annotations

from typing import Any

import docker.types
import pytest
from docker.models.containers import (  # type: ignore[attr-defined]  # private, unstubbed
    _create_container_args,
)
from ozwald.common.v1 import gpu_pb2
from ozwald.common.v1 import service_spec_pb2 as spec_pb2

from ozwald_agent.runtime.container_spec import (
    DEFAULT_NOFILE_LIMIT,
    DEFAULT_PIDS_LIMIT,
    RuntimeSettings,
    build_container_plan,
)
from ozwald_agent.runtime.errors import InvalidSpecError
from ozwald_agent.runtime.gpus import GpuAssignment

SETTINGS = RuntimeSettings(agent_id="agent-1")
H100_A = "GPU-1b7c3f42-0d5e-4c1b-9a77-3c2f4a5b6c7d"
H100_B = "GPU-8e9f0a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b"


def _spec(**fields: Any) -> spec_pb2.ServiceSpec:
    base: dict[str, Any] = {
        "realm": "main",
        "name": "embed",
        "image": "ozwald/tiny:local",
        "connector_port": 8080,
    }
    return spec_pb2.ServiceSpec(**{**base, **fields})


def _gpu_spec(count: int, vendor: gpu_pb2.GpuVendor.ValueType, variety: str) -> Any:
    return _spec(
        variety=variety,
        resources=spec_pb2.ResourceRequirements(
            gpus=spec_pb2.GpuRequirement(count=count, vendor=vendor),
            memory_bytes=16 << 30,
        ),
    )


def _wire(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The create request body's parts as the SDK builds them for Engine API 1.41."""
    converted: dict[str, Any] = _create_container_args({**kwargs, "version": "1.41"})
    return converted


def test_a_cpu_service_gets_the_security_and_limit_defaults() -> None:
    plan = build_container_plan(_spec(variety="cpu"), SETTINGS, fingerprint="fp1")
    kwargs = plan.create_kwargs

    assert plan.name == "ozwald-main-embed"
    assert kwargs["image"] == "ozwald/tiny:local"
    assert kwargs["cap_drop"] == ["ALL"]
    assert kwargs["security_opt"] == ["no-new-privileges:true"]
    assert kwargs["restart_policy"] == {"Name": "no"}
    assert kwargs["init"] is True
    assert kwargs["pids_limit"] == DEFAULT_PIDS_LIMIT
    assert kwargs["ulimits"] == [
        docker.types.Ulimit(name="nofile", soft=DEFAULT_NOFILE_LIMIT, hard=DEFAULT_NOFILE_LIMIT)
    ]
    assert kwargs["hostname"] == "embed"
    for absent in ("device_requests", "devices", "group_add", "ports", "mem_limit", "privileged"):
        assert absent not in kwargs
    host = _wire(kwargs)["host_config"]
    assert host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges:true"]
    assert host["RestartPolicy"] == {"Name": "no"}
    assert host["Init"] is True
    assert host["PidsLimit"] == DEFAULT_PIDS_LIMIT
    assert host["LogConfig"] == {
        "Type": "json-file",
        "Config": {"max-size": "50m", "max-file": "5"},
    }
    assert not any("seccomp" in opt for opt in host["SecurityOpt"])


def test_labels_carry_the_service_identity_and_the_agent() -> None:
    spec = _spec(variety="cpu", profile="fast", persistent=True, labels={"team": "search"})

    labels = build_container_plan(spec, SETTINGS, fingerprint="fp1").create_kwargs["labels"]

    assert labels == {
        "team": "search",
        "ozwald.managed": "true",
        "ozwald.agent": "agent-1",
        "ozwald.realm": "main",
        "ozwald.service": "embed",
        "ozwald.variety": "cpu",
        "ozwald.profile": "fast",
        "ozwald.fingerprint": "fp1",
        "ozwald.persistent": "true",
        "ozwald.gpus": "",
    }


def test_a_user_label_in_the_ozwald_namespace_is_refused() -> None:
    spec = _spec(labels={"ozwald.agent": "someone-else"})

    with pytest.raises(InvalidSpecError, match=r"reserved for Ozwald: ozwald\.agent"):
        build_container_plan(spec, SETTINGS, fingerprint="fp1")


def test_two_nvidia_gpus_are_one_device_request_with_both_uuids() -> None:
    gpus = GpuAssignment(gpu_pb2.GPU_VENDOR_NVIDIA, (H100_A, H100_B))

    plan = build_container_plan(
        _gpu_spec(2, gpu_pb2.GPU_VENDOR_NVIDIA, "nvidia"), SETTINGS, fingerprint="fp", gpus=gpus
    )
    kwargs = plan.create_kwargs

    assert kwargs["device_requests"] == [
        docker.types.DeviceRequest(
            driver="nvidia", device_ids=[H100_A, H100_B], capabilities=[["gpu"]]
        )
    ]
    assert kwargs["environment"]["NVIDIA_VISIBLE_DEVICES"] == f"{H100_A},{H100_B}"
    assert kwargs["labels"]["ozwald.gpus"] == f"{H100_A},{H100_B}"
    assert "devices" not in kwargs
    assert "group_add" not in kwargs
    host = _wire(kwargs)["host_config"]
    assert host["DeviceRequests"] == [
        {
            "Driver": "nvidia",
            "Count": 0,
            "DeviceIDs": [H100_A, H100_B],
            "Capabilities": [["gpu"]],
            "Options": {},
        }
    ]


def test_the_agents_gpu_pinning_wins_over_the_specs_environment() -> None:
    spec = _gpu_spec(1, gpu_pb2.GPU_VENDOR_NVIDIA, "nvidia")
    spec.environment["NVIDIA_VISIBLE_DEVICES"] = "all"
    gpus = GpuAssignment(gpu_pb2.GPU_VENDOR_NVIDIA, (H100_B,))

    plan = build_container_plan(spec, SETTINGS, fingerprint="fp", gpus=gpus)

    assert plan.create_kwargs["environment"]["NVIDIA_VISIBLE_DEVICES"] == H100_B


def test_a_container_without_nvidia_gpus_sees_none_even_from_a_cuda_image() -> None:
    plan = build_container_plan(_spec(variety="cpu"), SETTINGS, fingerprint="fp")

    assert plan.create_kwargs["environment"]["NVIDIA_VISIBLE_DEVICES"] == "void"


def test_an_amd_gpu_gets_kfd_and_exactly_its_own_render_node() -> None:
    gpus = GpuAssignment(gpu_pb2.GPU_VENDOR_AMD, ("0x9f3a17c2",), ("/dev/dri/renderD129",))

    plan = build_container_plan(
        _gpu_spec(1, gpu_pb2.GPU_VENDOR_AMD, "amdgpu"),
        SETTINGS,
        fingerprint="fp",
        gpus=gpus,
        gpu_group_ids=(44, 992),
    )
    kwargs = plan.create_kwargs

    assert kwargs["devices"] == [
        "/dev/kfd:/dev/kfd:rwm",
        "/dev/dri/renderD129:/dev/dri/renderD129:rwm",
    ]
    assert kwargs["group_add"] == ["44", "992"]
    assert "device_requests" not in kwargs
    assert kwargs["security_opt"] == ["no-new-privileges:true"]
    assert kwargs["environment"]["NVIDIA_VISIBLE_DEVICES"] == "void"
    host = _wire(kwargs)["host_config"]
    assert [d["PathOnHost"] for d in host["Devices"]] == ["/dev/kfd", "/dev/dri/renderD129"]
    assert host["GroupAdd"] == ["44", "992"]


def test_an_amd_assignment_needs_one_render_node_per_gpu() -> None:
    with pytest.raises(InvalidSpecError, match="one render node each"):
        GpuAssignment(gpu_pb2.GPU_VENDOR_AMD, ("a", "b"), ("/dev/dri/renderD128",))
    with pytest.raises(InvalidSpecError, match="not a DRM render node"):
        GpuAssignment(gpu_pb2.GPU_VENDOR_AMD, ("a",), ("/dev/dri/card0",))


@pytest.mark.parametrize(
    ("count", "assigned", "message"),
    [
        (1, None, "needs 1 GPU.* none were assigned"),
        (2, (H100_A,), "needs 2 GPU.* 1 were assigned"),
        (0, (H100_A,), "needs 0 GPU.* 1 were assigned"),
    ],
)
def test_the_assignment_must_match_the_requirement(
    count: int, assigned: tuple[str, ...] | None, message: str
) -> None:
    gpus = GpuAssignment(gpu_pb2.GPU_VENDOR_NVIDIA, assigned) if assigned else None

    with pytest.raises(InvalidSpecError, match=message):
        build_container_plan(
            _gpu_spec(count, gpu_pb2.GPU_VENDOR_NVIDIA, "nvidia"),
            SETTINGS,
            fingerprint="fp",
            gpus=gpus,
        )


def test_an_assignment_of_the_wrong_vendor_is_refused() -> None:
    gpus = GpuAssignment(gpu_pb2.GPU_VENDOR_AMD, ("amd-1",), ("/dev/dri/renderD128",))

    with pytest.raises(InvalidSpecError, match="needs GPU_VENDOR_NVIDIA GPUs"):
        build_container_plan(
            _gpu_spec(1, gpu_pb2.GPU_VENDOR_NVIDIA, "nvidia"),
            SETTINGS,
            fingerprint="fp",
            gpus=gpus,
        )


def test_env_files_are_overridden_by_the_specs_environment() -> None:
    spec = _spec(environment={"MODEL": "from-spec", "ONLY_SPEC": "1"})

    plan = build_container_plan(
        spec,
        SETTINGS,
        fingerprint="fp",
        env_file_values={"MODEL": "from-file", "TOKEN": "s3cret"},
    )

    environment = plan.create_kwargs["environment"]
    assert environment["MODEL"] == "from-spec"
    assert environment["ONLY_SPEC"] == "1"
    assert environment["TOKEN"] == "s3cret"
    assert "s3cret" not in repr(plan)


def test_resources_become_limits_without_swap() -> None:
    resources = spec_pb2.ResourceRequirements(
        memory_bytes=6 << 30, cpus=1.5, shm_size_bytes=1 << 30
    )

    kwargs = build_container_plan(
        _spec(resources=resources), SETTINGS, fingerprint="fp"
    ).create_kwargs

    assert kwargs["mem_limit"] == 6 << 30
    assert kwargs["memswap_limit"] == 6 << 30
    assert kwargs["nano_cpus"] == 1_500_000_000
    assert kwargs["shm_size"] == 1 << 30
    host = _wire(kwargs)["host_config"]
    assert (host["Memory"], host["MemorySwap"], host["NanoCpus"], host["ShmSize"]) == (
        6 << 30,
        6 << 30,
        1_500_000_000,
        1 << 30,
    )


def test_volumes_of_every_kind_become_mounts() -> None:
    volumes = [
        spec_pb2.VolumeMount(
            kind=spec_pb2.VOLUME_KIND_BIND, source="/srv/models", target="/models", read_only=True
        ),
        spec_pb2.VolumeMount(kind=spec_pb2.VOLUME_KIND_NAMED, source="hf-cache", target="/cache"),
        spec_pb2.VolumeMount(
            kind=spec_pb2.VOLUME_KIND_TMPFS, target="/scratch", tmpfs_size_bytes=64 << 20
        ),
    ]

    plan = build_container_plan(_spec(volumes=volumes), SETTINGS, fingerprint="fp")

    assert plan.create_kwargs["mounts"] == [
        {"Target": "/models", "Source": "/srv/models", "Type": "bind", "ReadOnly": True},
        {"Target": "/cache", "Source": "hf-cache", "Type": "volume", "ReadOnly": False},
        {
            "Target": "/scratch",
            "Source": None,
            "Type": "tmpfs",
            "ReadOnly": False,
            "TmpfsOptions": {"SizeBytes": 64 << 20},
        },
    ]
    assert [(v.name, v.realm) for v in plan.volumes] == [("hf-cache", "main")]


@pytest.mark.parametrize(
    ("volume", "message"),
    [
        (spec_pb2.VolumeMount(kind=spec_pb2.VOLUME_KIND_BIND, source="rel", target="/a"), "abs"),
        (spec_pb2.VolumeMount(kind=spec_pb2.VOLUME_KIND_NAMED, target="/a"), "needs its name"),
        (spec_pb2.VolumeMount(source="/x", target="/a"), "kind is not set"),
        (spec_pb2.VolumeMount(kind=spec_pb2.VOLUME_KIND_TMPFS, target="a"), "absolute container"),
    ],
)
def test_unusable_volumes_are_refused(volume: spec_pb2.VolumeMount, message: str) -> None:
    with pytest.raises(InvalidSpecError, match=message):
        build_container_plan(_spec(volumes=[volume]), SETTINGS, fingerprint="fp")


def test_two_volumes_at_one_path_are_refused() -> None:
    tmpfs = spec_pb2.VolumeMount(kind=spec_pb2.VOLUME_KIND_TMPFS, target="/a")

    with pytest.raises(InvalidSpecError, match="same path"):
        build_container_plan(_spec(volumes=[tmpfs, tmpfs]), SETTINGS, fingerprint="fp")


def test_portals_bind_loopback_unless_an_address_is_given() -> None:
    portals = [
        spec_pb2.Portal(name="api", host_port=18080),
        spec_pb2.Portal(name="lan", host_ip="0.0.0.0", host_port=8080, container_port=8080),
        spec_pb2.Portal(name="metrics", host_port=19090, container_port=9090),
    ]

    kwargs = build_container_plan(_spec(portals=portals), SETTINGS, fingerprint="fp").create_kwargs

    assert kwargs["ports"] == {
        "8080/tcp": [("127.0.0.1", 18080), ("0.0.0.0", 8080)],
        "9090/tcp": [("127.0.0.1", 19090)],
    }
    host = _wire(kwargs)["host_config"]
    assert host["PortBindings"] == {
        "8080/tcp": [
            {"HostIp": "127.0.0.1", "HostPort": "18080"},
            {"HostIp": "0.0.0.0", "HostPort": "8080"},
        ],
        "9090/tcp": [{"HostIp": "127.0.0.1", "HostPort": "19090"}],
    }


def test_a_portal_bound_twice_or_without_a_port_is_refused() -> None:
    twice = [spec_pb2.Portal(name="a", host_port=1), spec_pb2.Portal(name="b", host_port=1)]
    with pytest.raises(InvalidSpecError, match="bound twice"):
        build_container_plan(_spec(portals=twice), SETTINGS, fingerprint="fp")
    nowhere = [spec_pb2.Portal(name="a", host_port=1)]
    with pytest.raises(InvalidSpecError, match="no container port"):
        build_container_plan(_spec(portals=nowhere, connector_port=0), SETTINGS, fingerprint="fp")


def test_the_realm_network_is_joined_at_create_and_declared_ones_after() -> None:
    plan = build_container_plan(_spec(networks=["backend", "metrics"]), SETTINGS, fingerprint="f")
    kwargs = plan.create_kwargs

    assert [(n.name, n.declared) for n in plan.networks] == [
        ("ozwald-main", ""),
        ("ozwald-main-backend", "backend"),
        ("ozwald-main-metrics", "metrics"),
    ]
    assert [n.name for n in plan.late_networks] == ["ozwald-main-backend", "ozwald-main-metrics"]
    assert plan.aliases == ("embed",)
    assert kwargs["network"] == "ozwald-main"
    assert kwargs["networking_config"] == {"ozwald-main": {"Aliases": ["embed"]}}
    wire = _wire(kwargs)
    assert wire["networking_config"] == {"EndpointsConfig": {"ozwald-main": {"Aliases": ["embed"]}}}
    assert wire["host_config"]["NetworkMode"] == "ozwald-main"


def test_entrypoint_and_command_replace_the_images_only_when_given() -> None:
    bare = build_container_plan(_spec(), SETTINGS, fingerprint="fp").create_kwargs
    given = build_container_plan(
        _spec(entrypoint=["python", "-m"], command=["vllm.entrypoints.openai.api_server"]),
        SETTINGS,
        fingerprint="fp",
    ).create_kwargs

    assert "entrypoint" not in bare
    assert "command" not in bare
    assert given["entrypoint"] == ["python", "-m"]
    assert given["command"] == ["vllm.entrypoints.openai.api_server"]


def test_settings_can_leave_the_engines_log_and_nofile_defaults() -> None:
    settings = RuntimeSettings(agent_id="a", nofile_limit=None, log_max_size=None)

    kwargs = build_container_plan(_spec(), settings, fingerprint="fp").create_kwargs

    assert "ulimits" not in kwargs
    assert "log_config" not in kwargs


def test_a_name_prefix_keeps_simulated_hosts_apart() -> None:
    settings = RuntimeSettings(agent_id="sim-2", name_prefix="sim2")

    plan = build_container_plan(_spec(), settings, fingerprint="fp")

    assert plan.name == "sim2-main-embed"
    assert plan.networks[0].name == "sim2-main"


def test_a_spec_without_image_or_fingerprint_is_refused() -> None:
    with pytest.raises(InvalidSpecError, match="names no image"):
        build_container_plan(_spec(image=""), SETTINGS, fingerprint="fp")
    with pytest.raises(InvalidSpecError, match="fingerprint is empty"):
        build_container_plan(_spec(), SETTINGS, fingerprint="")
