"""One host's capacity and what is reserved on it, kept as running totals.

Placement reads these totals thousands of times a second, so they are plain mutable
attributes updated on every reserve and release, never recomputed from the reservations.
GPUs are addressed by position (the host's GPUs sorted by vendor, then index); a GPU's
free VRAM equals its total exactly when no one holds any of it, which is what taking a
GPU whole requires. A whole-GPU holder reserves the device's entire VRAM, so nobody can
share it afterwards. CPU is counted in millicores so sums never drift.

Reservations are recorded facts: one that does not fit (a host that shrank, state read
back after a restart) is kept and drives the free figures below zero, which the filters
then read as "nothing free".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ozwald_orchestrator.placement.model import Demand, Gpu, HostCapacity
from ozwald_orchestrator.placement.words import VENDOR_PREFERENCE

# The sort order of GPU positions and the shape that hosts with the same GPUs share.
GpuShape = tuple[tuple[int, str, int], ...]


def milli(cpus: float) -> int:
    return round(cpus * 1000)


def ordered_gpus(gpus: tuple[Gpu, ...]) -> tuple[Gpu, ...]:
    return tuple(sorted(gpus, key=lambda g: (g.vendor, g.index)))


def gpu_shape(gpus: tuple[Gpu, ...]) -> GpuShape:
    """What placement's static filters read of a host's GPUs, position by position."""
    return tuple((g.vendor, g.model.lower(), g.vram_bytes) for g in ordered_gpus(gpus))


@dataclass(frozen=True, slots=True)
class Reservation:
    """What one instance holds on one host. `demand.gpu_vendor` is the vendor actually
    used (never "any"); `amounts` is the VRAM held on each GPU position."""

    instance: str
    deployment: str
    host_id: str
    demand: Demand
    gpu_indices: tuple[int, ...]
    positions: tuple[int, ...]
    amounts: tuple[int, ...]


class HostState:
    """A host's static facts and running free figures (see the module docstring)."""

    __slots__ = (
        "capacity",
        "deployments",
        "down_reason",
        "entries",
        "free_cpu",
        "free_gpus",
        "free_mem",
        "gpu_cap",
        "gpu_free",
        "gpus",
        "host_id",
        "instances",
        "labels",
        "partition",
        "ports",
        "schedulable",
        "seq",
        "vram_free",
        "work",
    )

    def __init__(self, capacity: HostCapacity, seq: int) -> None:
        self.seq = seq
        self.host_id = capacity.host_id
        self.schedulable = True
        self.down_reason = ""
        # Set by the index that holds this host: its partition and its current entries.
        self.partition: object = None
        self.entries: list[tuple[list[Any], tuple[Any, ...]]] = []
        self.instances: dict[str, Reservation] = {}
        self.deployments: dict[str, int] = {}
        self.ports: dict[int, int] = {}
        self.capacity = capacity
        self.labels: Mapping[str, str] = capacity.labels
        self.gpus = ordered_gpus(capacity.gpus)
        self.gpu_cap = tuple(g.vram_bytes for g in self.gpus)
        self.gpu_free = list(self.gpu_cap)
        self.free_mem = capacity.memory_bytes
        self.free_cpu = milli(capacity.cpus)
        self.vram_free: dict[int, int] = {}
        self.free_gpus = 0.0
        # The fleet's GPU work (stranding.GpuWork), shared by the ledger's hosts.
        self.work: object = None
        self._total_vram()

    def _total_vram(self) -> None:
        totals: dict[int, int] = {0: 0}
        for gpu, free in zip(self.gpus, self.gpu_free, strict=True):
            totals[gpu.vendor] = totals.get(gpu.vendor, 0) + free
            totals[0] += free
        self.vram_free = totals
        self._count_free_gpus()

    def _count_free_gpus(self) -> None:
        """Free GPUs as fractions of each GPU, summed (what stranding counts)."""
        self.free_gpus = sum(
            max(0, free) / cap for free, cap in zip(self.gpu_free, self.gpu_cap, strict=True) if cap
        )

    def positions_of(self, vendor: int, indices: tuple[int, ...]) -> tuple[int, ...] | None:
        """The positions of the GPUs with these indices of `vendor` (0: the first vendor,
        in preference order, that has them all); None when the host lacks one."""
        vendors = VENDOR_PREFERENCE if vendor == 0 else (vendor,)
        for candidate in vendors:
            found = {g.index: p for p, g in enumerate(self.gpus) if g.vendor == candidate}
            if all(i in found for i in indices):
                return tuple(found[i] for i in indices)
        return None

    def hold(self, reservation: Reservation) -> None:
        demand = reservation.demand
        self.instances[reservation.instance] = reservation
        self.deployments[reservation.deployment] = (
            self.deployments.get(reservation.deployment, 0) + 1
        )
        for port in demand.host_ports:
            self.ports[port] = self.ports.get(port, 0) + 1
        self.free_mem -= demand.memory_bytes
        self.free_cpu -= milli(demand.cpus)
        vram = self.vram_free
        for position, amount in zip(reservation.positions, reservation.amounts, strict=True):
            self.gpu_free[position] -= amount
            vram[self.gpus[position].vendor] -= amount
            vram[0] -= amount
        if reservation.positions:
            self._count_free_gpus()

    def unhold(self, reservation: Reservation) -> None:
        demand = reservation.demand
        del self.instances[reservation.instance]
        left = self.deployments[reservation.deployment] - 1
        if left:
            self.deployments[reservation.deployment] = left
        else:
            del self.deployments[reservation.deployment]
        for port in demand.host_ports:
            if self.ports[port] == 1:
                del self.ports[port]
            else:
                self.ports[port] -= 1
        self.free_mem += demand.memory_bytes
        self.free_cpu += milli(demand.cpus)
        vram = self.vram_free
        for position, amount in zip(reservation.positions, reservation.amounts, strict=True):
            self.gpu_free[position] += amount
            vram[self.gpus[position].vendor] += amount
            vram[0] += amount
        if reservation.positions:
            self._count_free_gpus()

    def without(self, instance: str) -> HostState:
        """A detached copy of this host as if `instance` did not hold anything on it."""
        copy = HostState(self.capacity, self.seq)
        copy.schedulable, copy.down_reason = self.schedulable, self.down_reason
        copy.partition, copy.work = self.partition, self.work
        for name, reservation in self.instances.items():
            if name != instance:
                copy.hold(reservation)
        return copy
