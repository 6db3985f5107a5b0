"""From fleet messages to placement values: what a host offers, what an instance needs."""

from __future__ import annotations

from ozwald.agent.v1 import footprint_pb2
from ozwald.common.v1 import gpu_pb2, host_profile_pb2, service_spec_pb2

from ozwald_orchestrator.placement_adapters import (
    constraints_for,
    demand_for,
    host_capacity,
    placement_request,
)
from ozwald_sdk.fingerprint import fingerprint
from tests.unit.orchestrator.fakes import GIB, cpu_profile, deployment


def _gpu_profile() -> host_profile_pb2.HostProfile:
    profile = cpu_profile(cores=32, memory_gib=256)
    profile.cpu.usable_cores = 24
    nvidia = profile.gpu_vendors.add(vendor=gpu_pb2.GPU_VENDOR_NVIDIA, present=True)
    for index, mig in ((0, gpu_pb2.MIG_MODE_DISABLED), (1, gpu_pb2.MIG_MODE_ENABLED)):
        nvidia.devices.add(
            vendor=gpu_pb2.GPU_VENDOR_NVIDIA,
            index=index,
            uuid=f"GPU-{index}",
            name="NVIDIA H100 80GB HBM3",
            memory_total_bytes=80 * GIB,
            mig_mode=mig,
        )
    amd = profile.gpu_vendors.add(vendor=gpu_pb2.GPU_VENDOR_AMD, present=False)
    amd.devices.add(vendor=gpu_pb2.GPU_VENDOR_AMD, index=0, memory_total_bytes=192 * GIB)
    return profile


def test_a_host_offers_the_gpus_of_present_vendors_its_memory_and_usable_cores() -> None:
    capacity = host_capacity("h1", {"zone": "a"}, _gpu_profile())
    assert capacity.host_id == "h1" and dict(capacity.labels) == {"zone": "a"}
    # The MIG-enabled GPU and the absent vendor's device are never assigned.
    assert [(g.index, g.uuid, g.vram_bytes) for g in capacity.gpus] == [(0, "GPU-0", 80 * GIB)]
    assert capacity.memory_bytes == 256 * GIB
    assert capacity.cpus == 24.0


def _gpu_spec(vram_gib: int) -> service_spec_pb2.ServiceSpec:
    spec = service_spec_pb2.ServiceSpec(realm="demo", name="llm-0", variety="nvidia", image="vllm")
    spec.resources.memory_bytes = 32 * GIB
    spec.resources.cpus = 4
    spec.resources.gpus.count = 1
    spec.resources.gpus.vendor = gpu_pb2.GPU_VENDOR_NVIDIA
    spec.resources.gpus.vram_per_gpu_bytes = vram_gib * GIB
    spec.portals.add(name="api", host_port=8000, container_port=8000)
    return spec


def test_a_demand_is_what_the_spec_declares() -> None:
    demand = demand_for(_gpu_spec(40), None)
    assert (demand.variety, demand.gpu_count, demand.gpu_vendor) == ("nvidia", 1, 1)
    assert demand.vram_per_gpu_bytes == 40 * GIB and demand.memory_bytes == 32 * GIB
    assert demand.cpus == 4 and demand.host_ports == frozenset({8000})


def test_a_footprint_of_the_same_spec_wins_over_the_declaration() -> None:
    footprint = footprint_pb2.Footprint(peak_memory_bytes=9 * GIB, peak_vram_bytes_per_gpu=21 * GIB)
    demand = demand_for(_gpu_spec(40), footprint)
    assert demand.memory_bytes == 9 * GIB and demand.vram_per_gpu_bytes == 21 * GIB
    # A spec that takes whole GPUs keeps taking them whole whatever was measured.
    whole = demand_for(_gpu_spec(0), footprint)
    assert whole.vram_per_gpu_bytes == 0 and whole.whole_gpus


def test_a_request_looks_footprints_up_by_the_instance_spec_fingerprint() -> None:
    web = deployment("web", 2, memory_gib=8)
    measured = service_spec_pb2.ServiceSpec()
    measured.CopyFrom(web.candidates[0])
    measured.name = "web-1"
    footprint = footprint_pb2.Footprint(
        fingerprint=fingerprint(measured), peak_memory_bytes=GIB // 2
    )
    footprints = {footprint.fingerprint: footprint}
    [(spec0, demand0)], _ = placement_request(web, "web-0", footprints)
    [(spec1, demand1)], request = placement_request(web, "web-1", footprints)
    assert (spec0.name, spec1.name) == ("web-0", "web-1")
    assert demand0.memory_bytes == 8 * GIB  # measured for web-1's spec only
    assert demand1.memory_bytes == GIB // 2
    assert request.instance == "web-1" and request.deployment == "web"


def test_constraints_carry_over() -> None:
    web = deployment("web")
    web.constraints.gpu_vendor = gpu_pb2.GPU_VENDOR_AMD
    web.constraints.gpu_model = "MI300"
    web.constraints.min_vram_bytes = 64 * GIB
    web.constraints.host_labels["zone"] = "b"
    web.constraints.spread_across_hosts = True
    constraints = constraints_for(web)
    assert (constraints.gpu_vendor, constraints.gpu_model) == (gpu_pb2.GPU_VENDOR_AMD, "MI300")
    assert constraints.min_vram_bytes == 64 * GIB
    assert dict(constraints.host_labels) == {"zone": "b"} and constraints.spread_across_hosts
