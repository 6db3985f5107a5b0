"""The containers the vLLM catalogue's GPU varieties become, on recorded GPU hosts.

Nothing here has a GPU or an engine. Each case runs the real path an agent takes:
examples/vllm/ozwald.yml through the config loader and resolver, the ServiceSpec through
admission's `plan()` against a host built from a recorded hardware fixture
(tests/fixtures/hardware), the plan's GPUs into a `GpuAssignment` as the reconciler makes
it, the example's real env file through `read_env_files`, then `build_container_plan`,
and its kwargs through the docker SDK's own conversion to the Engine API's request body.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from docker.models.containers import (  # type: ignore[attr-defined]  # private, unstubbed
    _create_container_args,
)
from ozwald.agent.v1 import plan_pb2
from ozwald.common.v1 import gpu_pb2, host_profile_pb2, service_spec_pb2

from ozwald_agent.admission import fingerprint
from ozwald_agent.runtime import read_env_files
from ozwald_agent.runtime.container_spec import RuntimeSettings, build_container_plan
from ozwald_agent.runtime.gpus import KFD, GpuAssignment, device_group_ids
from ozwald_sdk.config import load_config, resolve
from tests.unit.admission.builders import FakeHostFacts, action, devices, host, make_plan, reasons

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "vllm" / "ozwald.yml"
SETTINGS = RuntimeSettings(agent_id="agent-1")
GIB = 1 << 30
# Host group ids of the device nodes, as stat(2) would give them on a typical Ubuntu host:
# /dev/kfd and the render nodes belong to `render`, which is not the image's number for it.
RENDER_GID = 992
VIDEO_GID = 44


@dataclass(frozen=True)
class Built:
    spec: service_spec_pb2.ServiceSpec
    plan: plan_pb2.Plan
    create: dict[str, Any]  # build_container_plan's kwargs
    wire: dict[str, Any]  # the docker SDK's create arguments, host_config included


def _stat(path: str) -> os.stat_result:
    gid = VIDEO_GID if path.endswith("renderD129") else RENDER_GID
    return os.stat_result((0o20660, 0, 0, 1, 0, gid, 0, 0, 0, 0))


def _facts(spec: service_spec_pb2.ServiceSpec) -> FakeHostFacts:
    """A host with the image pulled, the models directory and the env file in place."""
    paths = {v.source for v in spec.volumes if v.kind == service_spec_pb2.VOLUME_KIND_BIND}
    return FakeHostFacts(images={spec.image}, paths=paths | set(spec.env_files))


def _assignment(
    planned: plan_pb2.GpuAssignment, profile: host_profile_pb2.HostProfile
) -> GpuAssignment:
    """As the reconciler makes it: the plan's UUIDs, and AMD render nodes from the host."""
    uuids = tuple(d.uuid for d in planned.devices)
    nodes: tuple[str, ...] = ()
    if planned.vendor == gpu_pb2.GPU_VENDOR_AMD:
        by_uuid = {d.uuid: d.render_node for d in devices(profile, gpu_pb2.GPU_VENDOR_AMD)}
        nodes = tuple(by_uuid[u] for u in uuids)
    return GpuAssignment(planned.vendor, uuids, nodes)


def _plan_for(selector: str, fixture: str) -> tuple[service_spec_pb2.ServiceSpec, plan_pb2.Plan]:
    profile = host(fixture)
    spec = resolve(load_config(EXAMPLE), selector, profile).to_service_spec()
    return spec, make_plan([spec], on=profile, facts=_facts(spec))


def _build(selector: str, fixture: str) -> Built:
    spec, plan = _plan_for(selector, fixture)
    assert plan.admitted, reasons(plan)
    gpus = _assignment(action(plan, spec.name).gpus, host(fixture))
    container = build_container_plan(
        spec,
        SETTINGS,
        fingerprint=fingerprint(spec),
        env_file_values=read_env_files(list(spec.env_files)),
        gpus=gpus,
        gpu_group_ids=device_group_ids(gpus.amd_device_paths, _stat),
    )
    kwargs = container.create_kwargs
    return Built(spec, plan, kwargs, _create_container_args({**kwargs, "version": "1.41"}))


def _flags(built: Built) -> dict[str, str]:
    return dict(word.removeprefix("--").split("=", 1) for word in built.create["command"])


def _assert_hardened(built: Built) -> None:
    host_config = built.wire["host_config"]
    assert host_config["CapDrop"] == ["ALL"]
    assert not host_config.get("CapAdd")
    assert host_config["SecurityOpt"] == ["no-new-privileges:true"]
    assert not host_config.get("Privileged")
    assert not any("unconfined" in opt for opt in host_config["SecurityOpt"])
    assert host_config.get("IpcMode") in (None, "", "private", "shareable")


def _assert_model_mount_read_only(built: Built) -> None:
    mounts = {m["Target"]: m for m in built.wire["host_config"]["Mounts"]}
    models = mounts["/models"]
    assert (models["Type"], models["ReadOnly"]) == ("bind", True)
    assert models["Source"] == str(EXAMPLE.parent / "models")


def _assert_api_key_from_the_env_file(built: Built) -> None:
    assert [Path(p).name for p in built.spec.env_files] == ["vllm-api-key.env"]
    assert "VLLM_API_KEY" not in built.spec.environment
    assert (
        built.create["environment"]["VLLM_API_KEY"]
        == read_env_files(list(built.spec.env_files))["VLLM_API_KEY"]
    )
    assert not any("api-key" in word or "api_key" in word for word in built.create["command"])


# -- NVIDIA -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "fixture", "count"),
    [
        ("chat[nvidia]", "nvidia_h100_x1.json", 1),
        ("chat[nvidia][long-context]", "nvidia_h100_x1.json", 1),
        ("chat[nvidia][tp2]", "nvidia_rtx4090_x2.json", 2),
        ("chat[nvidia][tp2]", "nvidia_h100_x8.json", 2),
        ("chat[nvidia][tp4]", "nvidia_h100_x8.json", 4),
    ],
)
def test_nvidia_chat_is_pinned_by_uuid_with_one_shard_per_gpu(
    selector: str, fixture: str, count: int
) -> None:
    built = _build(selector, fixture)
    recorded = {d.uuid for d in devices(host(fixture))}
    assigned = [d.uuid for d in action(built.plan, "chat").gpus.devices]
    assert len(assigned) == count and set(assigned) <= recorded

    (request,) = built.wire["host_config"]["DeviceRequests"]
    assert request["Driver"] == "nvidia"
    assert request["DeviceIDs"] == assigned
    assert request["Capabilities"] == [["gpu"]]
    assert not request.get("Count")  # never "all": exactly the admitted UUIDs
    assert built.create["environment"]["NVIDIA_VISIBLE_DEVICES"] == ",".join(assigned)
    assert not built.wire["host_config"].get("Devices")  # no AMD nodes on an NVIDIA service

    assert built.create["image"] == "vllm/vllm-openai:v0.31.0"
    flags = _flags(built)
    assert flags["tensor-parallel-size"] == str(count)
    assert flags["served-model-name"] == "chat"
    assert flags["model"] == "/models/Qwen2.5-7B-Instruct"
    _assert_hardened(built)
    _assert_model_mount_read_only(built)
    _assert_api_key_from_the_env_file(built)


def test_nvidia_chat_memory_and_shared_memory_follow_the_profile() -> None:
    base = _build("chat[nvidia]", "nvidia_h100_x1.json")
    assert base.wire["host_config"]["Memory"] == 48 * GIB
    assert base.wire["host_config"]["MemorySwap"] == 48 * GIB
    assert base.wire["host_config"]["ShmSize"] == 8 * GIB
    tp4 = _build("chat[nvidia][tp4]", "nvidia_h100_x8.json")
    assert tp4.wire["host_config"]["Memory"] == 96 * GIB
    assert tp4.wire["host_config"]["ShmSize"] == 16 * GIB


@pytest.mark.parametrize(
    ("profile", "flag", "value"),
    [
        ("long-context", "max-model-len", "32768"),
        ("half-gpu", "gpu-memory-utilization", "0.45"),
        ("fp16", "dtype", "float16"),
        ("served-name", "served-model-name", "qwen2.5-7b-instruct"),
    ],
)
def test_each_chat_profile_changes_its_flag_and_only_it(
    profile: str, flag: str, value: str
) -> None:
    base = _flags(_build("chat[nvidia]", "nvidia_h100_x1.json"))
    changed = _flags(_build(f"chat[nvidia][{profile}]", "nvidia_h100_x1.json"))
    assert changed[flag] == value != base[flag]
    assert {k: v for k, v in changed.items() if k != flag} == {
        k: v for k, v in base.items() if k != flag
    }


def test_the_half_gpu_profile_lets_two_chats_share_one_h100() -> None:
    profile = host("nvidia_h100_x1.json")
    config = load_config(EXAMPLE)
    first = resolve(config, "chat[nvidia][half-gpu]", profile).to_service_spec()
    second = service_spec_pb2.ServiceSpec()
    second.CopyFrom(first)
    second.name = "chat-b"
    del second.portals[:]  # the example's portal belongs to `chat`
    facts = _facts(first)
    plan = make_plan([first, second], on=profile, facts=facts)
    assert plan.admitted, reasons(plan)
    (uuid,) = {d.uuid for d in devices(profile)}
    assert {d.uuid for a in plan.actions for d in a.gpus.devices} == {uuid}
    assert not action(plan, "chat").gpus.exclusive
    # At its default 0.9 share chat takes the card whole: nothing may share it.
    whole = resolve(config, "chat[nvidia]", profile).to_service_spec()
    assert action(make_plan([whole], on=profile, facts=facts), "chat").gpus.exclusive


def test_embed_on_nvidia_shares_a_gpu_and_reads_its_model_read_only() -> None:
    built = _build("embed[nvidia]", "nvidia_h100_x1.json")
    (request,) = built.wire["host_config"]["DeviceRequests"]
    assert request["DeviceIDs"] == [d.uuid for d in devices(host("nvidia_h100_x1.json"))]
    assert built.create["image"] == "vllm/vllm-openai:v0.31.0"
    flags = _flags(built)
    assert (flags["runner"], flags["max-model-len"], flags["dtype"]) == ("pooling", "256", "auto")
    assert built.wire["host_config"]["ShmSize"] == GIB
    assert not built.spec.env_files  # the key is opt-in for embed: embed[][api-key]
    _assert_hardened(built)
    _assert_model_mount_read_only(built)
    _assert_api_key_from_the_env_file(_build("embed[nvidia][api-key]", "nvidia_h100_x1.json"))


# -- AMD ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "fixture", "count"),
    [
        ("chat[amdgpu]", "amd_mi300x_x1.json", 1),
        ("chat[amdgpu][fp16]", "amd_mi300x_x1.json", 1),
        ("chat[amdgpu][tp2]", "amd_mi210_x2_sysfs.json", 2),
    ],
)
def test_amd_chat_gets_kfd_its_own_render_nodes_and_their_host_groups(
    selector: str, fixture: str, count: int
) -> None:
    built = _build(selector, fixture)
    profile = host(fixture)
    nodes = {d.uuid: d.render_node for d in devices(profile, gpu_pb2.GPU_VENDOR_AMD)}
    assigned = [d.uuid for d in action(built.plan, "chat").gpus.devices]
    assert len(assigned) == count
    expected_nodes = [nodes[u] for u in assigned]
    assert all(re.fullmatch(r"/dev/dri/renderD\d+", n) for n in expected_nodes)

    host_config = built.wire["host_config"]
    assert [d["PathOnHost"] for d in host_config["Devices"]] == [KFD, *expected_nodes]
    for device in host_config["Devices"]:
        assert device["PathInContainer"] == device["PathOnHost"]
        assert device["CgroupPermissions"] == "rwm"
    assert not any(d["PathOnHost"] in ("/dev/dri", "/dev/mem") for d in host_config["Devices"])
    expected_groups = {RENDER_GID} | (
        {VIDEO_GID} if "/dev/dri/renderD129" in expected_nodes else set()
    )
    assert host_config["GroupAdd"] == [str(g) for g in sorted(expected_groups)]
    assert not host_config.get("DeviceRequests")
    assert built.create["environment"]["NVIDIA_VISIBLE_DEVICES"] == "void"

    assert built.create["image"] == "vllm/vllm-openai-rocm:v0.31.0"
    flags = _flags(built)
    assert flags["tensor-parallel-size"] == str(count)
    assert host_config["ShmSize"] == (16 if count > 1 else 8) * GIB
    _assert_hardened(built)
    _assert_model_mount_read_only(built)
    _assert_api_key_from_the_env_file(built)


def test_amd_tp2_uses_both_mi210_render_nodes() -> None:
    built = _build("chat[amdgpu][tp2]", "amd_mi210_x2_sysfs.json")
    paths = sorted(d["PathOnHost"] for d in built.wire["host_config"]["Devices"])
    assert paths == ["/dev/dri/renderD128", "/dev/dri/renderD129", KFD]
    assert built.wire["host_config"]["GroupAdd"] == [str(VIDEO_GID), str(RENDER_GID)]


# -- Refusals -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "fixture"),
    [
        ("chat[nvidia][tp2]", "nvidia_h100_x1.json"),
        ("chat[nvidia][tp4]", "nvidia_rtx4090_x2.json"),
        ("chat[amdgpu][tp2]", "amd_mi300x_x1.json"),
        ("chat[amdgpu][tp4]", "amd_mi210_x2_sysfs.json"),
    ],
)
def test_a_tensor_parallel_profile_wider_than_the_host_is_refused(
    selector: str, fixture: str
) -> None:
    _, plan = _plan_for(selector, fixture)
    assert not plan.admitted
    assert reasons(plan) == [("chat", "NOT_ENOUGH_GPUS")]
    assert not action(plan, "chat").gpus.devices


def test_a_gpu_variety_on_a_host_of_the_other_vendor_is_refused() -> None:
    _, plan = _plan_for("chat[amdgpu]", "nvidia_h100_x1.json")
    assert reasons(plan) == [("chat", "GPU_VENDOR_ABSENT")]
