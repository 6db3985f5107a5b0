"""The index that lets placement look at a handful of hosts instead of all of them.

Hosts are grouped into partitions by their GPU shape (vendor, model and VRAM of each GPU,
in order), so everything the static filters read (vendor, model, minimum VRAM, GPU count)
is decided once per partition, not once per host. Inside a partition every schedulable
host has entries in lists kept sorted, one family per way a strategy ranks hosts:

- host entries `(free VRAM, free memory, free millicores, seq, host)`, one list per
  "kind" of VRAM: kind 0 counts all the host's GPUs (what a CPU-only demand is ranked
  by), kind N the GPUs of vendor N (a partition with one vendor shares one list);
- whole entries `(untouched GPUs, free VRAM, free memory, free millicores, seq, host)`
  per vendor, where untouched GPUs are those nobody holds any of (what a whole-GPU
  demand can take);
- GPU entries `(free VRAM of the GPU, free VRAM of the host, free memory, free
  millicores, seq, position, host)` per vendor, one per GPU (what a GPU-sharing demand
  is ranked by, GPU by GPU);
- `(free millicores per free GPU, seq, host)` and the same for memory, for the hosts with
  a GPU free: the hosts below the fleet's typical figures are those that strand GPUs
  (stranding.py), listed without looking at the others.

A demand takes the same amount from every host of a partition (its memory, its cores,
its VRAM per GPU, or for whole GPUs of one size, the size times the count), so the order
of the entries is also the order of what would be left after placing it. A strategy
bisects to the first entry with enough free and walks the list in its preferred
direction, stopping at the first host that passes every filter: that is the partition's
best under the strategy, and the best of all partitions is the fleet's best, exactly as
a scan of every host would find it. (Binpack looks at the hosts that strand GPUs one by
one, since a placement can make them strand less and rank before their place.)
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass
from typing import Any

from ozwald_orchestrator.placement.host_state import GpuShape, HostState

HostEntry = tuple[int, int, int, int, HostState]
WholeEntry = tuple[int, int, int, int, int, HostState]
GpuEntry = tuple[int, int, int, int, int, int, HostState]


@dataclass(frozen=True, slots=True)
class StaticFit:
    """What a partition's GPU shape allows one demand: the GPU positions it may use,
    whether those are all of the vendor's GPUs, the VRAM every one of them has when they
    are all the same size (else None), or why the shape rules the demand out (filter
    name and reason)."""

    positions: tuple[int, ...]
    uniform_vram: int | None
    all_of_vendor: bool = True
    filter: str = ""
    reason: str = ""


# (vendor, lower-cased model terms, minimum VRAM, GPU count)
StaticKey = tuple[int, tuple[str, ...], int, int]


class Partition:
    """Schedulable hosts with one GPU shape, in sorted lists (see the module docstring)."""

    __slots__ = (
        "_cpu_per_gpu",
        "_gpus",
        "_hosts",
        "_mem_per_gpu",
        "_whole",
        "kinds",
        "shape",
        "static",
        "vendor_positions",
    )

    def __init__(self, shape: GpuShape) -> None:
        self.shape = shape
        vendors = sorted({vendor for vendor, _, _ in shape})
        self.vendor_positions: dict[int, tuple[int, ...]] = {
            v: tuple(p for p, (vendor, _, _) in enumerate(shape) if vendor == v) for v in vendors
        }
        # Kind 0 always; a vendor's own host list only when the host mixes vendors.
        self.kinds: tuple[int, ...] = (0, *vendors) if len(vendors) > 1 else (0,)
        self._hosts: dict[int, list[HostEntry]] = {kind: [] for kind in self.kinds}
        if len(vendors) == 1:
            self._hosts[vendors[0]] = self._hosts[0]
        self._whole: dict[int, list[WholeEntry]] = {v: [] for v in vendors}
        self._gpus: dict[int, list[GpuEntry]] = {v: [] for v in vendors}
        # (free cores or memory per free GPU, seq, host) of the hosts with a GPU free.
        self._cpu_per_gpu: list[tuple[float, int, HostState]] = []
        self._mem_per_gpu: list[tuple[float, int, HostState]] = []
        self.static: dict[StaticKey, StaticFit] = {}

    def hosts(self, kind: int) -> list[HostEntry]:
        """Host entries for a demand counting VRAM of `kind` (empty without such GPUs)."""
        return self._hosts.get(kind, [])

    def whole(self, vendor: int) -> list[WholeEntry]:
        return self._whole.get(vendor, [])

    def gpus(self, vendor: int) -> list[GpuEntry]:
        return self._gpus.get(vendor, [])

    def pressured(self, cpu_per_gpu: float, mem_per_gpu: float) -> list[HostState]:
        """The hosts with fewer free cores, or less free memory, per free GPU than given
        (those that strand GPUs now: see stranding.py)."""
        found: dict[int, HostState] = {}
        for ratios, limit in ((self._cpu_per_gpu, cpu_per_gpu), (self._mem_per_gpu, mem_per_gpu)):
            if limit <= 0:
                continue
            for ratio, seq, state in ratios:
                if ratio >= limit:
                    break
                found[seq] = state
        return list(found.values())

    def __len__(self) -> int:
        return len(self._hosts[0])

    def add(self, state: HostState) -> None:
        mem, cpu, seq = state.free_mem, state.free_cpu, state.seq
        # (the sorted list, the entry in it), for each list the host is in.
        added: list[tuple[list[Any], tuple[Any, ...]]] = []
        for kind in self.kinds:
            added.append((self._hosts[kind], (state.vram_free.get(kind, 0), mem, cpu, seq, state)))
        free, cap = state.gpu_free, state.gpu_cap
        for vendor, positions in self.vendor_positions.items():
            vram = state.vram_free[vendor]
            untouched = sum(1 for p in positions if free[p] == cap[p])
            added.append((self._whole[vendor], (untouched, vram, mem, cpu, seq, state)))
            gpus = self._gpus[vendor]
            for p in positions:
                added.append((gpus, (free[p], vram, mem, cpu, seq, p, state)))
        if state.free_gpus > 0:
            added.append((self._cpu_per_gpu, (cpu / state.free_gpus, seq, state)))
            added.append((self._mem_per_gpu, (mem / state.free_gpus, seq, state)))
        for entries, entry in added:
            insort(entries, entry)
        state.entries = added

    def discard(self, state: HostState) -> None:
        for entries, entry in state.entries:
            at = bisect_left(entries, entry)
            if at < len(entries) and entries[at] is entry:
                del entries[at]
        state.entries = []
