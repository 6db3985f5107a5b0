"""Small fleets and requests for the placement tests."""

from __future__ import annotations

from collections.abc import Mapping

from ozwald_orchestrator.placement import (
    Constraints,
    Demand,
    FleetLedger,
    Gpu,
    HostCapacity,
    PlacementRequest,
)

GIB = 1 << 30
NVIDIA, AMD = 1, 2


def host(
    host_id: str,
    *,
    gpus: int = 0,
    vendor: int = NVIDIA,
    model: str = "NVIDIA H100 80GB HBM3",
    vram_gib: int = 80,
    memory_gib: int = 256,
    cpus: float = 32,
    labels: Mapping[str, str] | None = None,
) -> HostCapacity:
    return HostCapacity(
        host_id,
        dict(labels or {}),
        tuple(Gpu(i, f"{host_id}-gpu{i}", vendor, model, vram_gib * GIB) for i in range(gpus)),
        memory_gib * GIB,
        cpus,
    )


def ledger_of(*hosts: HostCapacity) -> FleetLedger:
    ledger = FleetLedger()
    for capacity in hosts:
        ledger.upsert_host(capacity)
    return ledger


def shared(vram_gib: int, *, memory_gib: int = 8, cpus: float = 2, vendor: int = NVIDIA) -> Demand:
    return Demand("nvidia", 1, vendor, vram_gib * GIB, memory_gib * GIB, cpus)


def whole(count: int, *, memory_gib: int = 8, cpus: float = 2, vendor: int = NVIDIA) -> Demand:
    return Demand("nvidia", count, vendor, 0, memory_gib * GIB, cpus)


def cpu_only(memory_gib: int = 8, cpus: float = 2, ports: frozenset[int] = frozenset()) -> Demand:
    return Demand("cpu", 0, 0, 0, memory_gib * GIB, cpus, ports)


def request(
    instance: str,
    *candidates: Demand,
    constraints: Constraints | None = None,
    avoid: frozenset[str] = frozenset(),
) -> PlacementRequest:
    deployment = instance.rsplit("-", 1)[0]
    return PlacementRequest(
        instance, deployment, tuple(candidates), constraints or Constraints(), avoid
    )
