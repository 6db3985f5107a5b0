"""FleetLedger: every host's capacity and every instance's reservation, kept incrementally.

The orchestrator tells the ledger what hosts exist (upsert_host when an agent registers or
sends a new profile), whether they may take new work (set_schedulable when a host goes
down, is lost or cordoned) and where instances are (reserve when one is placed or read
back from the store, release when it stops or moves). The scheduler reads it through the
partition index (see index.py) and never scans every host except to explain a decision.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ozwald_orchestrator.placement.host_state import (
    GpuShape,
    HostState,
    Reservation,
    gpu_shape,
    milli,
)
from ozwald_orchestrator.placement.index import Partition
from ozwald_orchestrator.placement.model import Demand, HostCapacity
from ozwald_orchestrator.placement.stranding import GpuWork
from ozwald_orchestrator.placement.words import counted, vendor_word

logger = logging.getLogger(__name__)


class UnknownHost(KeyError):
    """The ledger has no host by that id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown host"


@dataclass(frozen=True, slots=True)
class GpuFree:
    index: int
    vendor: int
    model: str
    vram_bytes: int
    free_bytes: int


@dataclass(frozen=True, slots=True)
class HostFree:
    """What a host has left for new instances."""

    host_id: str
    schedulable: bool
    memory_bytes: int
    cpus: float
    gpus: tuple[GpuFree, ...]
    ports_in_use: frozenset[int]
    instances: tuple[str, ...]

    def __str__(self) -> str:
        gpus = ", ".join(
            f"{vendor_word(g.vendor)} {g.index}: {g.free_bytes / (1 << 30):.1f} GiB"
            for g in self.gpus
        )
        state = "" if self.schedulable else " (unschedulable)"
        return (
            f"{self.host_id}{state}: {self.memory_bytes / (1 << 30):.1f} GiB memory, "
            f"{self.cpus:g} cpus{'; GPUs ' + gpus if gpus else ''}; "
            f"{counted(len(self.instances), 'instance')}"
        )


class FleetLedger:
    """Capacity and reservations of the whole fleet (see the module docstring)."""

    def __init__(self) -> None:
        self._hosts: dict[str, HostState] = {}
        self._partitions: dict[GpuShape, Partition] = {}
        self._partition_list: list[Partition] = []
        self._reservations: dict[str, Reservation] = {}
        self._by_deployment: dict[str, dict[str, int]] = {}
        self._work = GpuWork()
        self._next_seq = 0

    # Hosts ------------------------------------------------------------------------------

    def upsert_host(self, host: HostCapacity, schedulable: bool = True) -> None:
        """Adds a host or replaces its capacity; its reservations stay."""
        old = self._hosts.get(host.host_id)
        if old is None:
            state = HostState(host, self._next_seq)
            state.work = self._work
            self._next_seq += 1
        else:
            self._unindex(old)
            state = HostState(host, old.seq)
            state.work = self._work
            state.down_reason = old.down_reason
            for reservation in list(old.instances.values()):
                remapped = self._remapped(state, reservation)
                state.hold(remapped)
                self._reservations[remapped.instance] = remapped
                self._count_gpu_work(state, remapped)
        state.schedulable = schedulable
        if schedulable:
            state.down_reason = ""
        elif not state.down_reason:
            state.down_reason = "not schedulable"
        self._hosts[host.host_id] = state
        self._index(state)

    def set_schedulable(self, host_id: str, schedulable: bool, reason: str = "") -> None:
        """Whether the host may take new instances; `reason` says why not ("host down")."""
        state = self._state(host_id)
        self._unindex(state)
        state.schedulable = schedulable
        state.down_reason = "" if schedulable else (reason or "not schedulable")
        self._index(state)

    def remove_host(self, host_id: str) -> None:
        """Forgets a host and the reservations on it (their instances need a new home)."""
        state = self._hosts.pop(host_id, None)
        if state is None:
            return
        self._unindex(state)
        for instance in list(state.instances):
            self._forget(instance)
        if state.instances:
            logger.info(
                "host %s removed with %d reservation(s): %s",
                host_id,
                len(state.instances),
                ", ".join(sorted(state.instances)),
            )

    def host_ids(self) -> list[str]:
        return sorted(self._hosts)

    def __contains__(self, host_id: object) -> bool:
        """`host_id in ledger`: whether the host is known (cheaper than host_ids())."""
        return host_id in self._hosts

    def free(self, host_id: str) -> HostFree:
        state = self._state(host_id)
        return HostFree(
            host_id=host_id,
            schedulable=state.schedulable,
            memory_bytes=state.free_mem,
            cpus=state.free_cpu / 1000,
            gpus=tuple(
                GpuFree(g.index, g.vendor, g.model, g.vram_bytes, free)
                for g, free in zip(state.gpus, state.gpu_free, strict=True)
            ),
            ports_in_use=frozenset(state.ports),
            instances=tuple(sorted(state.instances)),
        )

    # Reservations -----------------------------------------------------------------------

    def reserve(
        self,
        instance: str,
        deployment: str,
        host_id: str,
        demand: Demand,
        gpu_indices: tuple[int, ...],
    ) -> None:
        """Records that `instance` holds `demand` on `host_id`, on the GPUs with those
        indices (of the demand's vendor). A previous reservation of the instance is
        released first. Raises UnknownHost, or ValueError when the host has no such GPUs."""
        state = self._state(host_id)
        positions = state.positions_of(demand.gpu_vendor, gpu_indices)
        if positions is None:
            have = ", ".join(f"{vendor_word(g.vendor)} {g.index}" for g in state.gpus) or "none"
            raise ValueError(
                f"cannot record {instance} on {host_id}: it names GPUs {list(gpu_indices)} "
                f"of vendor {vendor_word(demand.gpu_vendor)}, and the host's GPUs are: {have}"
            )
        if positions and not demand.gpu_vendor:
            demand = dataclasses.replace(demand, gpu_vendor=state.gpus[positions[0]].vendor)
        amounts = tuple(
            state.gpu_cap[p] if demand.whole_gpus else demand.vram_per_gpu_bytes for p in positions
        )
        self.release(instance)
        reservation = Reservation(
            instance, deployment, host_id, demand, tuple(gpu_indices), positions, amounts
        )
        self._hold(state, reservation)

    def release(self, instance: str) -> None:
        """Frees what `instance` holds; nothing happens when it holds nothing."""
        reservation = self._reservations.get(instance)
        if reservation is None:
            return
        state = self._hosts[reservation.host_id]
        self._unindex(state)
        state.unhold(reservation)
        self._index(state)
        self._forget(instance)

    def reservation(self, instance: str) -> Reservation | None:
        return self._reservations.get(instance)

    # What the scheduler reads -----------------------------------------------------------

    def partitions(self) -> list[Partition]:
        return self._partition_list

    def states(self) -> Iterable[HostState]:
        return self._hosts.values()

    def state(self, host_id: str) -> HostState:
        return self._state(host_id)

    def gpu_work(self) -> GpuWork:
        """The cores, memory and GPUs held by GPU-holding reservations (stranding.py)."""
        return self._work

    def deployment_hosts(self, deployment: str) -> Mapping[str, int]:
        """host id -> how many instances of `deployment` it holds."""
        return self._by_deployment.get(deployment, _EMPTY)

    def __len__(self) -> int:
        return len(self._hosts)

    # Internals --------------------------------------------------------------------------

    def _state(self, host_id: str) -> HostState:
        state = self._hosts.get(host_id)
        if state is None:
            raise UnknownHost(f"no host {host_id!r} in the fleet")
        return state

    def _hold(self, state: HostState, reservation: Reservation) -> None:
        self._unindex(state)
        state.hold(reservation)
        self._index(state)
        self._reservations[reservation.instance] = reservation
        self._count_gpu_work(state, reservation)
        hosts = self._by_deployment.setdefault(reservation.deployment, {})
        hosts[state.host_id] = hosts.get(state.host_id, 0) + 1

    def _count_gpu_work(self, state: HostState, reservation: Reservation) -> None:
        if reservation.positions:
            demand = reservation.demand
            self._work.add(
                reservation.instance,
                milli(demand.cpus),
                demand.memory_bytes,
                (
                    amount / state.gpu_cap[p]
                    for p, amount in zip(reservation.positions, reservation.amounts, strict=True)
                    if state.gpu_cap[p]
                ),
            )
        else:
            self._work.remove(reservation.instance)

    def _forget(self, instance: str) -> None:
        self._work.remove(instance)
        reservation = self._reservations.pop(instance)
        hosts = self._by_deployment[reservation.deployment]
        left = hosts[reservation.host_id] - 1
        if left:
            hosts[reservation.host_id] = left
        else:
            del hosts[reservation.host_id]
            if not hosts:
                del self._by_deployment[reservation.deployment]

    def _index(self, state: HostState) -> None:
        shape = gpu_shape(state.capacity.gpus) if state.partition is None else None
        if shape is not None:
            partition = self._partitions.get(shape)
            if partition is None:
                partition = self._partitions[shape] = Partition(shape)
                self._partition_list.append(partition)
            state.partition = partition
        if state.schedulable:
            assert isinstance(state.partition, Partition)
            state.partition.add(state)

    def _unindex(self, state: HostState) -> None:
        if state.entries:
            assert isinstance(state.partition, Partition)
            state.partition.discard(state)

    def _remapped(self, state: HostState, reservation: Reservation) -> Reservation:
        """The reservation on the host's new GPU list; GPUs that are gone drop out."""
        demand = reservation.demand
        found = {
            (g.vendor, g.index): p
            for p, g in enumerate(state.gpus)
            if g.vendor == demand.gpu_vendor
        }
        kept = [i for i in reservation.gpu_indices if (demand.gpu_vendor, i) in found]
        if len(kept) < len(reservation.gpu_indices):
            logger.warning(
                "%s held GPUs %s on %s; the host now reports only %s of them",
                reservation.instance,
                list(reservation.gpu_indices),
                state.host_id,
                kept,
            )
        positions = tuple(found[(demand.gpu_vendor, i)] for i in kept)
        amounts = tuple(
            state.gpu_cap[p] if demand.whole_gpus else demand.vram_per_gpu_bytes for p in positions
        )
        return dataclasses.replace(
            reservation, gpu_indices=tuple(kept), positions=positions, amounts=amounts
        )


_EMPTY: Mapping[str, int] = MappingProxyType({})
