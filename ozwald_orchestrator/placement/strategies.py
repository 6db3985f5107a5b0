"""Placement strategies: how the hosts that pass every filter are ranked.

A strategy is a plugin chosen by name (`strategy_by_name`); anything that fits the
`Strategy` protocol can be handed to the Scheduler, and mypy checks that it does. It
gives two things that must agree:

- `key(state, probe, positions)`: the rank of one feasible host for one probe, lower is
  better, a total order (the host's join sequence breaks ties). `explain` sorts every
  feasible host by it.
- `search(ledger, probe)`: the feasible host with the lowest key. The built-in strategies
  find it through the partition index (index.py) in a few steps per partition; a plugin
  without an index can return `scan_all(self, ledger, probe)`.

Built in:

- binpack: best fit. A CPU-only variety goes to the host left with the least free VRAM
  (all of it, so CPU work fills hosts without GPUs, or whose GPUs are taken, first),
  then the least free memory, then the fewest free cores. A variety sharing a GPU is
  fitted GPU by GPU: the GPU left with the least free VRAM (within a host that is the
  agent's own choice), then the host left with the least free VRAM of that vendor, then
  memory and cores; several shared GPUs count their VRAM left together. A variety
  taking GPUs whole goes to the host left with the fewest untouched GPUs it could use
  (it keeps hosts with many free GPUs for the demands that need many), then as above;
  the agent takes the largest untouched GPUs.
- spread: the host with the fewest instances of the same deployment, then the most free
  VRAM, memory and cores left (ties go to the host that joined last).
"""

from __future__ import annotations

import difflib
from bisect import bisect_left
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from ozwald_orchestrator.placement.filters import Probe, fit, static_fit
from ozwald_orchestrator.placement.host_state import HostState
from ozwald_orchestrator.placement.index import HostEntry, Partition, StaticFit
from ozwald_orchestrator.placement.ledger import FleetLedger

SortKey = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Choice:
    """A feasible host for a probe: its rank key and the GPU positions it would use."""

    key: SortKey
    state: HostState
    positions: tuple[int, ...]


class Strategy(Protocol):
    """A placement strategy (see the module docstring)."""

    @property
    def name(self) -> str: ...

    def key(self, state: HostState, probe: Probe, positions: tuple[int, ...]) -> SortKey: ...

    def search(self, ledger: FleetLedger, probe: Probe) -> Choice | None: ...


def reserved_vram(state: HostState, probe: Probe, positions: tuple[int, ...]) -> int:
    """The VRAM the probe takes from the host on these GPUs."""
    if probe.whole:
        return sum(state.gpu_cap[p] for p in positions)
    return probe.vram * len(positions)


def taken_by_earlier(state: HostState, probe: Probe) -> bool:
    """Whether a probe tried before this one for the same candidate (another vendor, for
    "any") fits the host: then the host runs that one, not this."""
    for earlier in probe.earlier:
        if earlier.conflict:
            continue
        assert isinstance(state.partition, Partition)
        static = static_fit(state.partition, earlier)
        if not static.filter and not isinstance(fit(state, earlier, static), str):
            return True
    return False


def _accept(state: HostState, probe: Probe, static: StaticFit) -> tuple[int, ...] | None:
    positions = fit(state, probe, static)
    if isinstance(positions, str) or (probe.earlier and taken_by_earlier(state, probe)):
        return None
    return positions


def _scan_entries(
    strategy: Strategy, entries: list[HostEntry], probe: Probe, static: StaticFit
) -> Choice | None:
    best: Choice | None = None
    for entry in entries:
        state = entry[4]
        positions = _accept(state, probe, static)
        if positions is not None:
            key = strategy.key(state, probe, positions)
            if best is None or key < best.key:
                best = Choice(key, state, positions)
    return best


def scan_all(strategy: Strategy, ledger: FleetLedger, probe: Probe) -> Choice | None:
    """The feasible host with the lowest key, by looking at every schedulable host."""
    if probe.conflict:
        return None
    best: Choice | None = None
    for partition in ledger.partitions():
        static = static_fit(partition, probe)
        if static.filter:
            continue
        found = _scan_entries(strategy, partition.hosts(0), probe, static)
        if found is not None and (best is None or found.key < best.key):
            best = found
    return best


def _uniform_reservation(probe: Probe, static: StaticFit) -> int | None:
    """The VRAM the probe takes on any host of the partition, when it is the same on all
    (always, except whole GPUs of different sizes)."""
    if not probe.count:
        return 0
    if not probe.whole:
        return probe.vram * probe.count
    return None if static.uniform_vram is None else static.uniform_vram * probe.count


class Binpack:
    """Best fit on GPU memory, then memory, then cores (see the module docstring)."""

    name = "binpack"

    def key(self, state: HostState, probe: Probe, positions: tuple[int, ...]) -> SortKey:
        rest = (
            state.vram_free.get(probe.vendor, 0) - reserved_vram(state, probe, positions),
            state.free_mem - probe.memory,
            state.free_cpu - probe.cpu,
            state.seq,
        )
        if not probe.count:
            return rest
        if probe.whole:
            assert isinstance(state.partition, Partition)
            eligible = static_fit(state.partition, probe).positions
            free, cap = state.gpu_free, state.gpu_cap
            untouched = sum(1 for p in eligible if free[p] == cap[p])
            return (untouched - probe.count, *rest)
        left = sum(state.gpu_free[p] for p in positions) - probe.vram * len(positions)
        return (left, *rest)

    def search(self, ledger: FleetLedger, probe: Probe) -> Choice | None:
        if probe.conflict:
            return None
        best: Choice | None = None
        for partition in ledger.partitions():
            static = static_fit(partition, probe)
            if static.filter:
                continue
            if not probe.count:
                found = self._cpu_only(partition, probe, static, best)
            elif probe.whole and static.all_of_vendor and static.uniform_vram is not None:
                found = self._whole(partition, probe, static, best)
            elif not probe.whole and probe.count == 1:
                found = self._shared(partition, probe, static, best)
            else:
                # Several shared GPUs, or whole GPUs of mixed sizes: rare, so no index.
                found = _scan_entries(self, partition.hosts(probe.vendor), probe, static)
            if found is not None and (best is None or found.key < best.key):
                best = found
        return best

    def _cpu_only(
        self, partition: Partition, probe: Probe, static: StaticFit, best: Choice | None
    ) -> Choice | None:
        memory, cpu = probe.memory, probe.cpu
        entries = partition.hosts(0)
        i, end = 0, len(entries)
        while i < end:
            vram, free_mem, free_cpu, seq, state = entries[i]
            key = (vram, free_mem - memory, free_cpu - cpu, seq)
            if best is not None and key >= best.key:
                return None  # every later entry leaves more
            if free_mem < memory:
                # The hosts with as much free VRAM and less memory come next: skip them.
                i = bisect_left(entries, (vram, memory), i + 1)
                continue
            i += 1
            if free_cpu < cpu:
                continue
            positions = _accept(state, probe, static)
            if positions is not None:
                return Choice(key, state, positions)
        return None

    def _whole(
        self, partition: Partition, probe: Probe, static: StaticFit, best: Choice | None
    ) -> Choice | None:
        memory, cpu, count = probe.memory, probe.cpu, probe.count
        reserved = count * (static.uniform_vram or 0)
        entries = partition.whole(probe.vendor)
        i, end = bisect_left(entries, (count,)), len(entries)
        while i < end:
            untouched, vram, free_mem, free_cpu, seq, state = entries[i]
            key = (untouched - count, vram - reserved, free_mem - memory, free_cpu - cpu, seq)
            if best is not None and key >= best.key:
                return None
            if free_mem < memory:
                i = bisect_left(entries, (untouched, vram, memory), i + 1)
                continue
            i += 1
            if free_cpu < cpu:
                continue
            positions = _accept(state, probe, static)
            if positions is not None:
                return Choice(key, state, positions)
        return None

    def _shared(
        self, partition: Partition, probe: Probe, static: StaticFit, best: Choice | None
    ) -> Choice | None:
        """GPU by GPU: the first GPU with enough free VRAM whose host passes is the best
        fit, and the one the agent would choose on that host."""
        memory, cpu, need = probe.memory, probe.cpu, probe.vram
        eligible = None if static.all_of_vendor else frozenset(static.positions)
        entries = partition.gpus(probe.vendor)
        i, end = bisect_left(entries, (need,)), len(entries)
        while i < end:
            gpu_free, vram, free_mem, free_cpu, seq, position, state = entries[i]
            key = (gpu_free - need, vram - need, free_mem - memory, free_cpu - cpu, seq)
            if best is not None and key >= best.key:
                return None
            if free_mem < memory:
                i = bisect_left(entries, (gpu_free, vram, memory), i + 1)
                continue
            i += 1
            if free_cpu < cpu or (eligible is not None and position not in eligible):
                continue
            positions = _accept(state, probe, static)
            if positions is not None:
                return Choice(key, state, positions)
        return None


class Spread:
    """Fewest instances of the deployment, then the most left free (see above)."""

    name = "spread"

    def key(self, state: HostState, probe: Probe, positions: tuple[int, ...]) -> SortKey:
        return (
            state.deployments.get(probe.deployment, 0),
            reserved_vram(state, probe, positions) - state.vram_free.get(probe.vendor, 0),
            probe.memory - state.free_mem,
            probe.cpu - state.free_cpu,
            -state.seq,
        )

    def search(self, ledger: FleetLedger, probe: Probe) -> Choice | None:
        if probe.conflict:
            return None
        running = ledger.deployment_hosts(probe.deployment)
        best: Choice | None = None
        for partition in ledger.partitions():
            static = static_fit(partition, probe)
            if static.filter:
                continue
            entries = partition.hosts(probe.vendor)
            reserved = _uniform_reservation(probe, static)
            if reserved is None:
                found = _scan_entries(self, entries, probe, static)
            else:
                found = self._roomiest(
                    entries, probe, static, reserved=reserved, running=running, best=best
                )
            if found is not None and (best is None or found.key < best.key):
                best = found
        if best is None and running and not probe.spread:
            best = self._among_running(ledger, probe, running)
        return best

    def _roomiest(
        self,
        entries: list[HostEntry],
        probe: Probe,
        static: StaticFit,
        *,
        reserved: int,
        running: Mapping[str, int],
        best: Choice | None,
    ) -> Choice | None:
        """The roomiest host of the partition without the deployment (hosts with it
        rank after every host without it, and are looked at only when none is left)."""
        memory, cpu = probe.memory, probe.cpu
        i = len(entries) - 1
        while i >= 0:
            vram, free_mem, free_cpu, seq, state = entries[i]
            if vram < reserved:
                return None
            key = (0, reserved - vram, memory - free_mem, cpu - free_cpu, -seq)
            if best is not None and key >= best.key:
                return None
            if free_mem < memory:
                # The rest with as much free VRAM have less memory still: skip them.
                i = bisect_left(entries, (vram,), 0, i) - 1
                continue
            i -= 1
            if free_cpu < cpu or state.host_id in running:
                continue
            positions = _accept(state, probe, static)
            if positions is not None:
                return Choice(key, state, positions)
        return None

    def _among_running(
        self, ledger: FleetLedger, probe: Probe, running: Mapping[str, int]
    ) -> Choice | None:
        best: Choice | None = None
        for host_id in running:
            state = ledger.state(host_id)
            if not state.schedulable:
                continue
            assert isinstance(state.partition, Partition)
            static = static_fit(state.partition, probe)
            if static.filter:
                continue
            positions = _accept(state, probe, static)
            if positions is not None:
                key = self.key(state, probe, positions)
                if best is None or key < best.key:
                    best = Choice(key, state, positions)
        return best


STRATEGIES: Mapping[str, Callable[[], Strategy]] = {
    "binpack": Binpack,
    "spread": Spread,
}


def strategy_by_name(name: str) -> Strategy:
    """The strategy called `name`. Raises ValueError naming the known ones."""
    factory = STRATEGIES.get(name)
    if factory is None:
        known = ", ".join(sorted(STRATEGIES))
        close = difflib.get_close_matches(name, list(STRATEGIES), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"unknown placement strategy {name!r}{hint}; known strategies: {known}. "
            "Choose one of them (`--strategy`)."
        )
    return factory()
