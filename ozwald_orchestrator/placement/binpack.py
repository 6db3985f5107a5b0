"""binpack: best fit that avoids stranding GPUs.

The rank, lower first:

- a CPU-only variety: how much the placement changes the GPU capacity the host cannot
  feed with its remaining cores and memory (stranding.py, in tenths of a GPU), then the
  host left with the least free VRAM (all of it, so CPU work fills hosts without GPUs, or
  whose GPUs are taken, first);
- a whole-GPU variety: the stranding change, then the host left with the fewest
  untouched GPUs it could use (keeping hosts with many free GPUs for demands that need
  many; the agent takes the largest untouched GPUs);
- a variety sharing a GPU is fitted GPU by GPU: the GPU left with the least free VRAM
  (the agent's own choice within a host), then the stranding change; several shared GPUs
  count their VRAM left together;
- then the least free VRAM of the vendor, memory and cores left, and the join order.

The search walks the partition index (index.py) in that order, partitions whose first
candidate could rank best first, and stops as soon as nothing further can rank better.
Hosts that strand GPUs already are looked at one by one: only they can strand less after
a placement, so only they can rank before their place in the index.
"""

from __future__ import annotations

from bisect import bisect_left

from ozwald_orchestrator.placement.filters import Probe, static_fit
from ozwald_orchestrator.placement.host_state import HostState
from ozwald_orchestrator.placement.index import Partition, StaticFit
from ozwald_orchestrator.placement.ledger import FleetLedger
from ozwald_orchestrator.placement.ranking import (
    Choice,
    SortKey,
    accept,
    better,
    gpus_taken,
    reserved_vram,
    scan_entries,
)
from ozwald_orchestrator.placement.stranding import STEPS_PER_GPU, GpuWork, change, stranded


def _indexed(probe: Probe, static: StaticFit) -> bool:
    """Whether binpack's index ranks the probe: all but several shared GPUs, and whole
    GPUs of mixed sizes or of a subset of the vendor's GPUs."""
    if probe.whole:
        return static.all_of_vendor and static.uniform_vram is not None
    return probe.count <= 1


class Binpack:
    """Best fit, aware of stranded GPUs (see the module docstring and stranding.py)."""

    name = "binpack"

    def __init__(self, *, stranding: bool = True) -> None:
        # Without stranding it is a plain best fit (every change counts as none); kept
        # for comparisons (bench/pack_quality.py).
        self.stranding = stranding

    def key(self, state: HostState, probe: Probe, positions: tuple[int, ...]) -> SortKey:
        assert isinstance(state.work, GpuWork)
        strands = change(
            (state.free_gpus, state.free_cpu, state.free_mem),
            (gpus_taken(state, probe, positions), probe.cpu, probe.memory),
            state.work.typical() if self.stranding else None,
        )
        rest = (
            state.vram_free.get(probe.vendor, 0) - reserved_vram(state, probe, positions),
            state.free_mem - probe.memory,
            state.free_cpu - probe.cpu,
            state.seq,
        )
        if not probe.count:
            return (strands, *rest)
        if probe.whole:
            assert isinstance(state.partition, Partition)
            eligible = static_fit(state.partition, probe).positions
            free, cap = state.gpu_free, state.gpu_cap
            untouched = sum(1 for p in eligible if free[p] == cap[p])
            return (strands, untouched - probe.count, *rest)
        left = sum(state.gpu_free[p] for p in positions) - probe.vram * len(positions)
        return (left, strands, *rest)

    def search(self, ledger: FleetLedger, probe: Probe) -> Choice | None:
        if probe.conflict:
            return None
        typical = ledger.gpu_work().typical() if self.stranding else None
        best: Choice | None = None
        walks: list[tuple[SortKey, int, Partition, StaticFit]] = []
        pressured: list[tuple[Partition, StaticFit]] = []
        for number, partition in enumerate(ledger.partitions()):
            static = static_fit(partition, probe)
            if static.filter:
                continue
            if not _indexed(probe, static):
                # Several shared GPUs, or whole GPUs of mixed sizes: rare, so no index.
                found = scan_entries(self, partition.hosts(probe.vendor), probe, static)
                best = better(found, best)
                continue
            if typical is not None and probe.count:
                pressured.append((partition, static))
            least = self._least(partition, probe, static)
            if least is not None:
                walks.append((least, number, partition, static))
        # The partitions whose first host could rank best are walked first; once the best
        # found ranks before a partition's first host, nothing in it can beat it.
        walks.sort(key=lambda walk: walk[:2])
        for least, _, partition, static in walks:
            if best is not None and least >= best.key:
                break
            best = better(self._walk(partition, probe, static, best), best)
        if typical is not None:
            for partition, static in pressured:
                best = self._pressured(partition, probe, static, typical, best)
        return best

    def _walk(
        self, partition: Partition, probe: Probe, static: StaticFit, best: Choice | None
    ) -> Choice | None:
        if not probe.count:
            return self._cpu_only(partition, probe, static, best)
        if probe.whole:
            return self._whole(partition, probe, static, best)
        return self._shared(partition, probe, static, best)

    def _pressured(
        self,
        partition: Partition,
        probe: Probe,
        static: StaticFit,
        typical: tuple[float, float],
        best: Choice | None,
    ) -> Choice | None:
        """Hosts that strand GPUs already are the only ones that can strand less after a
        placement, so they may rank before their place in the index: they are looked at
        one by one. (A CPU-only placement never strands less: it takes no GPU.)"""
        for state in partition.pressured(*typical):
            if best is not None:
                if probe.whole:
                    # It can strand at most all it strands now less.
                    now = stranded(state.free_gpus, state.free_cpu, state.free_mem, typical)
                    if -round(now * STEPS_PER_GPU) - 1 > best.key[0]:
                        continue
                elif probe.vram and state.vram_free.get(probe.vendor, 0) < probe.vram:
                    continue
            positions = accept(state, probe, static)
            if positions is None:
                continue
            if best is not None and not probe.whole:
                left = sum(state.gpu_free[p] for p in positions) - probe.vram * len(positions)
                if left > best.key[0]:
                    continue  # the VRAM left on the GPU ranks before stranding
            best = better(Choice(self.key(state, probe, positions), state, positions), best)
        return best

    def _least(self, partition: Partition, probe: Probe, static: StaticFit) -> SortKey | None:
        """The rank the partition's first candidate entry would have without stranding:
        no host of the partition that strands nothing now ranks before it."""
        memory, cpu = probe.memory, probe.cpu
        if not probe.count:
            hosts = partition.hosts(0)
            if not hosts:
                return None
            vram, free_mem, free_cpu, seq, _ = hosts[0]
            return (0, vram, free_mem - memory, free_cpu - cpu, seq)
        if probe.whole:
            whole = partition.whole(probe.vendor)
            at = bisect_left(whole, (probe.count,))
            if at == len(whole):
                return None
            untouched, vram, free_mem, free_cpu, seq, _ = whole[at]
            reserved = probe.count * (static.uniform_vram or 0)
            return (
                0,
                untouched - probe.count,
                vram - reserved,
                free_mem - memory,
                free_cpu - cpu,
                seq,
            )
        gpus = partition.gpus(probe.vendor)
        at = bisect_left(gpus, (probe.vram,))
        if at == len(gpus):
            return None
        gpu_free, vram, free_mem, free_cpu, seq, _, _ = gpus[at]
        need = probe.vram
        return (gpu_free - need, 0, vram - need, free_mem - memory, free_cpu - cpu, seq)

    def _cpu_only(
        self, partition: Partition, probe: Probe, static: StaticFit, best: Choice | None
    ) -> Choice | None:
        memory, cpu = probe.memory, probe.cpu
        entries = partition.hosts(0)
        found: Choice | None = None
        i, end = 0, len(entries)
        while i < end:
            vram, free_mem, free_cpu, seq, state = entries[i]
            least = (0, vram, free_mem - memory, free_cpu - cpu, seq)
            if best is not None and least >= best.key:
                break  # no host from here on can rank better
            if free_mem < memory:
                # The hosts with as much free VRAM and less memory come next: skip them.
                i = bisect_left(entries, (vram, memory), i + 1)
                continue
            i += 1
            if free_cpu < cpu:
                continue
            positions = accept(state, probe, static)
            if positions is not None:
                key = self.key(state, probe, positions)
                if best is None or key < best.key:
                    best = found = Choice(key, state, positions)
                if key == least:
                    break
        return found

    def _whole(
        self, partition: Partition, probe: Probe, static: StaticFit, best: Choice | None
    ) -> Choice | None:
        memory, cpu, count = probe.memory, probe.cpu, probe.count
        reserved = count * (static.uniform_vram or 0)
        entries = partition.whole(probe.vendor)
        found: Choice | None = None
        i, end = bisect_left(entries, (count,)), len(entries)
        while i < end:
            untouched, vram, free_mem, free_cpu, seq, state = entries[i]
            least = (0, untouched - count, vram - reserved, free_mem - memory, free_cpu - cpu, seq)
            if best is not None and least >= best.key:
                break
            if free_mem < memory:
                i = bisect_left(entries, (untouched, vram, memory), i + 1)
                continue
            i += 1
            if free_cpu < cpu:
                continue
            positions = accept(state, probe, static)
            if positions is not None:
                key = self.key(state, probe, positions)
                if best is None or key < best.key:
                    best = found = Choice(key, state, positions)
                if key == least:
                    break
        return found

    def _shared(
        self, partition: Partition, probe: Probe, static: StaticFit, best: Choice | None
    ) -> Choice | None:
        """GPU by GPU: the GPU with the least free VRAM that is enough, on a host that
        passes; within a host that is the GPU the agent would choose."""
        memory, cpu, need = probe.memory, probe.cpu, probe.vram
        eligible = None if static.all_of_vendor else frozenset(static.positions)
        entries = partition.gpus(probe.vendor)
        found: Choice | None = None
        i, end = bisect_left(entries, (need,)), len(entries)
        while i < end:
            gpu_free, vram, free_mem, free_cpu, seq, position, state = entries[i]
            least = (gpu_free - need, 0, vram - need, free_mem - memory, free_cpu - cpu, seq)
            if best is not None and least >= best.key:
                break
            if free_mem < memory:
                i = bisect_left(entries, (gpu_free, vram, memory), i + 1)
                continue
            i += 1
            if free_cpu < cpu or (eligible is not None and position not in eligible):
                continue
            positions = accept(state, probe, static)
            if positions is not None:
                key = self.key(state, probe, positions)
                if best is None or key < best.key:
                    best = found = Choice(key, state, positions)
                if key == least:
                    break
        return found
