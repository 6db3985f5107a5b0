"""From the fleet's messages to placement's plain values: hosts, demands, constraints.

A demand counts what the agent's admission will count for the same spec: a recorded
footprint of that very spec (same fingerprint, from any host, the newest) over the
declared figures, and whole GPUs whenever the spec declares no VRAM per GPU.
"""

from __future__ import annotations

from collections.abc import Mapping

from ozwald.agent.v1 import footprint_pb2
from ozwald.common.v1 import gpu_pb2, host_profile_pb2, service_spec_pb2
from ozwald.orchestrator.v1 import deployment_pb2

from ozwald_orchestrator.placement.model import (
    Constraints,
    Demand,
    Gpu,
    HostCapacity,
    PlacementRequest,
)
from ozwald_sdk.fingerprint import fingerprint as spec_fingerprint

# Footprints by the fingerprint of the spec they were measured for.
Footprints = Mapping[str, footprint_pb2.Footprint]


def host_capacity(
    host_id: str, labels: Mapping[str, str], profile: host_profile_pb2.HostProfile
) -> HostCapacity:
    """What a host offers: the GPUs of its present vendors (MIG-enabled ones excepted, as
    the agent never assigns them), its physical memory and the cores the agent may use."""
    gpus: list[Gpu] = []
    for report in profile.gpu_vendors:
        if not report.present:
            continue
        for device in report.devices:
            if device.mig_mode == gpu_pb2.MIG_MODE_ENABLED:
                continue
            gpus.append(
                Gpu(
                    index=device.index,
                    uuid=device.uuid,
                    vendor=device.vendor or report.vendor,
                    model=device.name,
                    vram_bytes=device.memory_total_bytes,
                )
            )
    cpu = profile.cpu
    return HostCapacity(
        host_id=host_id,
        labels=dict(labels),
        gpus=tuple(gpus),
        memory_bytes=profile.memory.total_bytes,
        cpus=float(cpu.usable_cores or cpu.logical_cores),
    )


def instance_spec(
    candidate: service_spec_pb2.ServiceSpec, instance_id: str
) -> service_spec_pb2.ServiceSpec:
    """The candidate as one instance runs it: a service named by the instance id."""
    spec = service_spec_pb2.ServiceSpec()
    spec.CopyFrom(candidate)
    spec.name = instance_id
    return spec


def demand_for(
    spec: service_spec_pb2.ServiceSpec, footprint: footprint_pb2.Footprint | None
) -> Demand:
    """What `spec` needs, a footprint measured for it preferred over its declarations."""
    resources = spec.resources
    gpus = resources.gpus
    memory = resources.memory_bytes
    vram = gpus.vram_per_gpu_bytes
    if footprint is not None:
        memory = footprint.peak_memory_bytes or memory
        # A spec without VRAM per GPU takes its GPUs whole whatever it was seen to use.
        if vram and footprint.HasField("peak_vram_bytes_per_gpu"):
            vram = footprint.peak_vram_bytes_per_gpu
    return Demand(
        variety=spec.variety,
        gpu_count=gpus.count,
        gpu_vendor=gpus.vendor,
        vram_per_gpu_bytes=vram if gpus.count else 0,
        memory_bytes=memory,
        cpus=resources.cpus,
        host_ports=frozenset(p.host_port for p in spec.portals if p.host_port),
    )


def constraints_for(deployment: deployment_pb2.Deployment) -> Constraints:
    wanted = deployment.constraints
    return Constraints(
        gpu_vendor=wanted.gpu_vendor,
        gpu_model=wanted.gpu_model,
        min_vram_bytes=wanted.min_vram_bytes,
        host_labels=dict(wanted.host_labels),
        spread_across_hosts=wanted.spread_across_hosts,
    )


def candidate_demands(
    deployment: deployment_pb2.Deployment, instance_id: str, footprints: Footprints
) -> tuple[tuple[service_spec_pb2.ServiceSpec, Demand], ...]:
    """Each candidate's instance spec and demand, in the deployment's preference order."""
    result: list[tuple[service_spec_pb2.ServiceSpec, Demand]] = []
    for candidate in deployment.candidates:
        spec = instance_spec(candidate, instance_id)
        # Hashing the spec costs more than the rest: skip it while nothing was measured.
        footprint = footprints.get(spec_fingerprint(spec)) if footprints else None
        result.append((spec, demand_for(spec, footprint)))
    return tuple(result)


def placement_request(
    deployment: deployment_pb2.Deployment,
    instance_id: str,
    footprints: Footprints,
    avoid_hosts: frozenset[str] = frozenset(),
) -> tuple[tuple[tuple[service_spec_pb2.ServiceSpec, Demand], ...], PlacementRequest]:
    """The instance's candidate specs with their demands, and the request to place it."""
    options = candidate_demands(deployment, instance_id, footprints)
    request = PlacementRequest(
        instance=instance_id,
        deployment=deployment.name,
        candidates=tuple(demand for _, demand in options),
        constraints=constraints_for(deployment),
        avoid_hosts=avoid_hosts,
    )
    return options, request
