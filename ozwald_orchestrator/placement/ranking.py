"""What every strategy shares: the Strategy protocol, a ranked choice, and the helpers a
strategy uses to judge one host (accept), to rank every host without an index
(scan_all), and to count what a placement takes.

A strategy gives two things that must agree:

- `key(state, probe, positions)`: the rank of one feasible host for one probe, lower is
  better, a total order (the host's join sequence breaks ties). `explain` sorts every
  feasible host by it.
- `search(ledger, probe)`: the feasible host with the lowest key. The built-in strategies
  find it through the partition index (index.py) in a few steps per partition; a plugin
  without an index can return `scan_all(self, ledger, probe)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

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


@runtime_checkable
class LedgerAware(Protocol):
    """Optional for a strategy: one that keeps figures of its own about the whole fleet
    (fgd: the typical requests) is given the ledger when a Scheduler takes it, so that
    `key`, which explain calls without a search, can work them out too."""

    def attach(self, ledger: FleetLedger) -> None: ...


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


def accept(state: HostState, probe: Probe, static: StaticFit) -> tuple[int, ...] | None:
    positions = fit(state, probe, static)
    if isinstance(positions, str) or (probe.earlier and taken_by_earlier(state, probe)):
        return None
    return positions


def scan_entries(
    strategy: Strategy, entries: list[HostEntry], probe: Probe, static: StaticFit
) -> Choice | None:
    best: Choice | None = None
    for entry in entries:
        state = entry[4]
        positions = accept(state, probe, static)
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
        found = scan_entries(strategy, partition.hosts(0), probe, static)
        if found is not None and (best is None or found.key < best.key):
            best = found
    return best


def uniform_reservation(probe: Probe, static: StaticFit) -> int | None:
    """The VRAM the probe takes on any host of the partition, when it is the same on all
    (always, except whole GPUs of different sizes)."""
    if not probe.count:
        return 0
    if not probe.whole:
        return probe.vram * probe.count
    return None if static.uniform_vram is None else static.uniform_vram * probe.count


def gpus_taken(state: HostState, probe: Probe, positions: tuple[int, ...]) -> float:
    """The GPUs the probe takes on these positions, as fractions of each GPU."""
    cap = state.gpu_cap
    if probe.whole:
        return float(sum(1 for p in positions if cap[p]))
    return sum(probe.vram / cap[p] for p in positions if cap[p])


def better(found: Choice | None, best: Choice | None) -> Choice | None:
    if found is None:
        return best
    return found if best is None or found.key < best.key else best
