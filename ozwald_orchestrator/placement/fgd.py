"""fgd: Fragmentation Gradient Descent, a placement strategy for fleets that share GPUs.

From Weng et al., "Beware of Fragmentation: Scheduling GPU-Sharing Workloads with
Fragmentation Gradient Descent" (USENIX ATC 2023). Binpack fills the fullest host that
fits; spread the emptiest. Neither asks whether what is left over can still be used. FGD
does: it places each instance where the fleet's expected GPU fragmentation grows least.

- Typical requests: what the fleet runs now. Every reservation in the ledger is a request
  shape (GPU vendor, GPUs and the share of a GPU each takes, cores, memory); the most
  common shapes, covering COVERAGE of all reservations (at most MAX_TYPES of them), with
  their frequencies, are the workload the fleet expects. With nothing placed yet, the
  request being placed is the only shape known. GPU needs are compared as shares of a
  GPU (a quarter of a 16 GiB GPU and a quarter of a 32 GiB GPU are the same shape), as
  the paper and its simulator do.
- A host's fragmentation for one shape is the free GPU capacity (in GPUs, shares summed)
  that shape cannot use there: all of it when the shape cannot run on the host at all
  (too few cores or too little memory left, or too few GPUs with enough free), otherwise
  the GPUs with less free than the shape needs of one GPU, and GPUs of another vendor.
  Its expected fragmentation is the frequency-weighted sum over the typical shapes.
- An instance goes to the host whose expected fragmentation grows least by taking it
  (it may shrink: filling a GPU share nothing else could use). The GPUs within the host
  are the ones the agent takes (filters.fit), so the ledger matches the host.
- Ties (most often 0: CPU-only work on hosts whose GPUs it does not starve) go to the
  host left with the least free VRAM, then memory, then cores: best fit, so CPU work
  fills hosts without GPUs first.

It is a plugin in every respect: registered in Ozwald's pyproject.toml under the entry
point group `ozwald.placement_strategies`, loaded by placement/registry.py like a third
party's, and written against the same `Strategy` protocol and helpers (`scan_all`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ozwald_orchestrator.placement.filters import Probe
from ozwald_orchestrator.placement.host_state import HostState, Reservation, milli
from ozwald_orchestrator.placement.ledger import FleetLedger
from ozwald_orchestrator.placement.model import Gpu
from ozwald_orchestrator.placement.registry import StrategyFactory
from ozwald_orchestrator.placement.strategies import Choice, SortKey, reserved_vram, scan_all

# The typical shapes cover this share of the fleet's reservations, at most MAX_TYPES.
COVERAGE = 0.95
MAX_TYPES = 24
# The typical shapes are worked out again once this share of the reservations counted
# last time was searched for: the fleet's mix changes slowly, counting it is O(fleet).
REFRESH_SHARE = 0.05
# Fragmentation figures are compared in thousandths of a GPU.
MILLI = 1000
# Cached fragmentation figures, by host shape and free figures; cleared past this.
MEMO_LIMIT = 200_000


@dataclass(frozen=True, slots=True)
class Shape:
    """One typical request: vendor (0: none), GPUs, how much of each GPU it takes
    (`share`: thousandths of the GPU's VRAM, MILLI for a whole GPU; or, for a request
    not placed yet, `vram` bytes), millicores and memory."""

    vendor: int
    count: int
    share: int
    cpu: int
    memory: int
    vram: int = 0


def _held_shape(state: HostState, reservation: Reservation) -> Shape:
    demand = reservation.demand
    cpu, memory = milli(demand.cpus), demand.memory_bytes
    if not reservation.positions:
        return Shape(0, 0, 0, cpu, memory)
    cap = state.gpu_cap
    shares = [
        amount / cap[p]
        for p, amount in zip(reservation.positions, reservation.amounts, strict=True)
        if cap[p]
    ]
    share = MILLI if demand.whole_gpus or not shares else round(MILLI * sum(shares) / len(shares))
    return Shape(demand.gpu_vendor, len(reservation.positions), min(MILLI, share), cpu, memory)


def _requested_shape(probe: Probe) -> Shape:
    if not probe.count:
        return Shape(0, 0, 0, probe.cpu, probe.memory)
    if probe.whole:
        return Shape(probe.vendor, probe.count, MILLI, probe.cpu, probe.memory)
    return Shape(probe.vendor, probe.count, 0, probe.cpu, probe.memory, probe.vram)


class Fgd:
    """Fragmentation Gradient Descent (see the module docstring)."""

    name = "fgd"

    def __init__(self) -> None:
        self._mix: tuple[tuple[Shape, float], ...] = ()
        self._counted = 0  # reservations when the mix was worked out
        self._since = 0  # placements searched since
        self._ledger: FleetLedger | None = None
        self._known = False  # whether the mix was counted on `_ledger`
        self._memo: dict[tuple[object, ...], int] = {}

    def attach(self, ledger: FleetLedger) -> None:
        """The ledger this strategy ranks (ranking.LedgerAware): explain may ask for keys
        before any search counted the typical shapes."""
        self._ledger = ledger
        self._known = False

    # Strategy ---------------------------------------------------------------------------

    def key(self, state: HostState, probe: Probe, positions: tuple[int, ...]) -> SortKey:
        if not self._known and self._ledger is not None:
            self._count(self._ledger, None)
        before = self._fragmentation(state, state.gpu_free, state.free_cpu, state.free_mem)
        after_free = list(state.gpu_free)
        for p in positions:
            after_free[p] -= state.gpu_cap[p] if probe.whole else probe.vram
        after = self._fragmentation(
            state, after_free, state.free_cpu - probe.cpu, state.free_mem - probe.memory
        )
        return (
            after - before,
            state.vram_free.get(probe.vendor, 0) - reserved_vram(state, probe, positions),
            state.free_mem - probe.memory,
            state.free_cpu - probe.cpu,
            state.seq,
        )

    def search(self, ledger: FleetLedger, probe: Probe) -> Choice | None:
        self._refresh(ledger, probe)
        return scan_all(self, ledger, probe)

    # The typical shapes -----------------------------------------------------------------

    def typical(self) -> tuple[tuple[Shape, float], ...]:
        """The typical request shapes and their frequencies (summing to 1)."""
        return self._mix

    def _refresh(self, ledger: FleetLedger, probe: Probe) -> None:
        """Work the typical shapes out again when enough was placed since."""
        self._since += 1
        due = max(1, int(REFRESH_SHARE * self._counted))
        if ledger is self._ledger and self._known and self._since < due:
            return
        self._count(ledger, probe)

    def _count(self, ledger: FleetLedger, probe: Probe | None) -> None:
        """The typical shapes from every reservation of the ledger; with none, the shape
        of the request being placed, if any."""
        self._ledger = ledger
        self._known = True
        self._since = 0
        counts: Counter[Shape] = Counter()
        for state in ledger.states():
            for reservation in state.instances.values():
                counts[_held_shape(state, reservation)] += 1
        self._counted = sum(counts.values())
        if not counts and probe is not None:
            counts[_requested_shape(probe)] = 1
        mix = _typical(counts)
        if mix != self._mix:
            self._mix = mix
            self._memo.clear()

    # Fragmentation ----------------------------------------------------------------------

    def _fragmentation(
        self, state: HostState, free: list[int], free_cpu: int, free_mem: int
    ) -> int:
        """The host's expected fragmentation with these free figures, in thousandths of
        a GPU."""
        if not state.gpus:
            return 0
        memo_key = (state.partition, tuple(free), free_cpu, free_mem)
        known = self._memo.get(memo_key)
        if known is not None:
            return known
        cap = state.gpu_cap
        free = [max(0, f) for f in free]
        shares = [round(f * MILLI / c) if c else 0 for f, c in zip(free, cap, strict=True)]
        idle = sum(shares)
        expected = 0.0
        if idle:
            gpus = list(zip(state.gpus, free, shares, strict=True))
            for shape, weight in self._mix:
                expected += weight * _unusable(shape, gpus, idle, free_cpu, free_mem)
        value = round(expected)
        if len(self._memo) >= MEMO_LIMIT:
            self._memo.clear()
        self._memo[memo_key] = value
        return value


def _unusable(
    shape: Shape, gpus: list[tuple[Gpu, int, int]], idle: int, free_cpu: int, free_mem: int
) -> int:
    """The free GPU share (thousandths, summed) that `shape` cannot use on a host with
    these (GPU, free VRAM, free share) and free cores and memory."""
    if free_cpu < shape.cpu or free_mem < shape.memory:
        return idle  # it cannot run here at all: every free GPU is stranded for it
    if not shape.count:
        return 0
    usable = 0
    stranded = 0
    for gpu, free, share in gpus:
        if gpu.vendor != shape.vendor:
            fits = False
        elif shape.share == MILLI:
            fits = free >= gpu.vram_bytes  # a whole GPU: nobody holds any of it
        elif shape.vram:
            fits = free >= shape.vram
        else:
            fits = share >= shape.share
        if fits:
            usable += 1
        else:
            stranded += share
    return idle if usable < shape.count else stranded


def _typical(counts: Counter[Shape]) -> tuple[tuple[Shape, float], ...]:
    total = sum(counts.values())
    chosen: list[tuple[Shape, int]] = []
    covered = 0
    for shape, count in sorted(counts.items(), key=lambda item: (-item[1], _order(item[0]))):
        if len(chosen) >= MAX_TYPES or covered >= COVERAGE * total:
            break
        chosen.append((shape, count))
        covered += count
    return tuple((shape, count / covered) for shape, count in chosen)


def _order(shape: Shape) -> tuple[int, int, int, int, int]:
    return (shape.vendor, shape.count, shape.share, shape.cpu, shape.memory)


# mypy checks here that Fgd fits the Strategy protocol, as a plugin author's would.
FACTORY: StrategyFactory = Fgd
