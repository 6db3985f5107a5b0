"""What before and after hold: small dicts that show exactly what changed."""

from __future__ import annotations

from ozwald.common.v1 import gpu_pb2
from ozwald.common.v1.host_profile_pb2 import CpuInfo, HostProfile, MemoryInfo
from ozwald.common.v1.service_spec_pb2 import ServiceSpec
from ozwald.orchestrator.v1 import agent_link_service_pb2, deployment_pb2
from ozwald.orchestrator.v1 import fleet_state_pb2 as FS

from ozwald_orchestrator.audit.states import (
    assignment_state,
    deployment_state,
    host_state,
    instance_state,
    joined_host,
)
from ozwald_sdk.audit_chain import canonical_json
from ozwald_sdk.cli.render_audit import describe_change


def test_an_instance_state_change_shows_only_what_changed() -> None:
    instance = FS.Instance(
        id="embed-0", deployment="embed", host_id="h1", state=FS.INSTANCE_STATE_ASSIGNED
    )
    before = instance_state(instance)
    instance.state = FS.INSTANCE_STATE_FAILED
    instance.reason = "exited with code 137 (out of memory)"
    after = instance_state(instance)
    assert before["state"] == "ASSIGNED" and after["state"] == "FAILED"
    assert describe_change(canonical_json(before), canonical_json(after)) == (
        'reason "" -> "exited with code 137 (out of memory)", state ASSIGNED -> FAILED'
    )


def test_host_states_and_what_a_host_brings() -> None:
    profile = HostProfile(
        cpu=CpuInfo(logical_cores=32, usable_cores=30), memory=MemoryInfo(total_bytes=2**36)
    )
    profile.gpu_vendors.add(
        vendor=gpu_pb2.GPU_VENDOR_NVIDIA,
        devices=[gpu_pb2.GpuDevice(index=0, name="NVIDIA H100"), gpu_pb2.GpuDevice(index=1)],
    )
    host = FS.Host(
        id="h1", state=FS.HOST_STATE_DOWN, labels={"zone": "b", "rack": "1"}, profile=profile
    )
    assert host_state(host) == {"state": "DOWN", "connected": False, "cordoned": False, "drain": ""}
    host.cordoned = True
    host.drain.state = FS.DRAIN_STATE_RUNNING
    assert host_state(host) == {
        "state": "DOWN",
        "connected": False,
        "cordoned": True,
        "drain": "RUNNING",
    }
    host.cordoned, host.drain.state = False, FS.DRAIN_STATE_UNSPECIFIED
    assert joined_host(host) == {
        "labels": {"rack": "1", "zone": "b"},
        "cpus": 30,
        "memory_bytes": 2**36,
        "gpus": ["NVIDIA H100", "gpu1"],
    }


def test_assignments_and_deployments() -> None:
    assignment = agent_link_service_pb2.Assignment(
        version=7, services=[ServiceSpec(name="b-0"), ServiceSpec(name="a-1")]
    )
    assert assignment_state(assignment) == {"version": 7, "instances": ["a-1", "b-0"]}
    deployment = deployment_pb2.Deployment(name="embed", realm="default", replicas=2)
    assert deployment_state(deployment) == {"name": "embed", "realm": "default", "replicas": 2}
