"""spread: the host with the fewest instances of the same deployment, then the most free
VRAM, memory and cores left (ties go to the host that joined last).

The search walks each partition's hosts from the roomiest down, skipping those that run
the deployment already; those are ranked one by one only when no other host can take it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping

from ozwald_orchestrator.placement.filters import Probe, static_fit
from ozwald_orchestrator.placement.host_state import HostState
from ozwald_orchestrator.placement.index import HostEntry, Partition, StaticFit
from ozwald_orchestrator.placement.ledger import FleetLedger
from ozwald_orchestrator.placement.ranking import (
    Choice,
    SortKey,
    accept,
    reserved_vram,
    scan_entries,
    uniform_reservation,
)


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
            reserved = uniform_reservation(probe, static)
            if reserved is None:
                found = scan_entries(self, entries, probe, static)
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
            positions = accept(state, probe, static)
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
            positions = accept(state, probe, static)
            if positions is not None:
                key = self.key(state, probe, positions)
                if best is None or key < best.key:
                    best = Choice(key, state, positions)
        return best
