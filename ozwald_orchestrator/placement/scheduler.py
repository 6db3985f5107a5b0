"""The Scheduler: places instances on the fleet's hosts and explains why.

`place` asks the strategy for the best host of the first candidate (variety) any host can
run, trying later candidates only when no host can run an earlier one, and reserves what
it chose in the ledger. `explain` runs the whole filter chain on every host, so it can
say for each one why it was rejected or how it ranks; it changes nothing.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass

from ozwald_orchestrator.placement.filters import STAGE, Probe, evaluate, probes
from ozwald_orchestrator.placement.host_state import HostState
from ozwald_orchestrator.placement.ledger import FleetLedger
from ozwald_orchestrator.placement.model import (
    Placement,
    PlacementRequest,
    Rejection,
    Unplaced,
    Verdict,
)
from ozwald_orchestrator.placement.ranking import LedgerAware
from ozwald_orchestrator.placement.strategies import Choice, SortKey, Strategy
from ozwald_orchestrator.placement.words import counted, ordinal

logger = logging.getLogger(__name__)

BEST_SHOWN = 10
EXAMPLES_SHOWN = 3


@dataclass(frozen=True, slots=True)
class _Ranked:
    rank: tuple[int, SortKey]
    state: HostState
    probe: Probe


@dataclass(frozen=True, slots=True)
class _Refused:
    state: HostState
    filter: str
    reason: str


class Scheduler:
    """Places instances with one strategy on one ledger (see the module docstring)."""

    def __init__(self, ledger: FleetLedger, strategy: Strategy) -> None:
        self.ledger = ledger
        self.strategy = strategy
        if isinstance(strategy, LedgerAware):
            strategy.attach(ledger)

    def place(self, request: PlacementRequest, *, reasons: bool = True) -> Placement | Unplaced:
        """Chooses a host and reserves the instance there; a reservation it already had is
        released first (placing again moves it) and stays released when no host can take
        it. When none can, says why: `reasons=False` skips the scan of every host that
        the words need."""
        self.ledger.release(request.instance)
        chosen = self._choose(probes(request))
        if chosen is None:
            if not reasons:
                return Unplaced(request.instance, "no host passes every filter", ())
            summary, _, rejections = self.explain(request, None)
            return Unplaced(request.instance, summary, tuple(rejections))
        choice, probe = chosen
        state = choice.state
        demand = probe.demand
        if demand.gpu_count and demand.gpu_vendor != probe.vendor:
            demand = dataclasses.replace(demand, gpu_vendor=probe.vendor)
        indices = tuple(state.gpus[p].index for p in choice.positions)
        self.ledger.reserve(request.instance, request.deployment, state.host_id, demand, indices)
        return Placement(request.instance, state.host_id, demand.variety, indices)

    def place_all(
        self, requests: Sequence[PlacementRequest], *, reasons: bool = True
    ) -> list[Placement | Unplaced]:
        """Places each request in turn; each sees the reservations of those before it.

        Within one call the fleet only fills up, so a request asking for exactly what an
        earlier one could not get cannot be placed either: it is answered with the
        earlier one's reasons instead of another search and scan of every host (the
        replicas of a deployment that does not fit). Placing an instance that already
        holds a reservation frees it, and ends that shortcut."""
        out: list[Placement | Unplaced] = []
        failed: dict[Hashable, Unplaced] = {}
        for request in requests:
            if failed and self.ledger.reservation(request.instance) is not None:
                failed.clear()
            signature = _signature(request)
            known = failed.get(signature)
            if known is not None:
                why = known.summary.split(": ", 1)[-1]
                summary = (
                    f"{request.instance} cannot be placed, like {known.instance} that asks "
                    f"for the same: {why}"
                )
                out.append(Unplaced(request.instance, summary, known.rejections))
                continue
            outcome = self.place(request, reasons=reasons)
            if isinstance(outcome, Unplaced):
                failed[signature] = outcome
            out.append(outcome)
        return out

    def explain(
        self, request: PlacementRequest, placed_on: str | None
    ) -> tuple[str, list[Verdict], list[Rejection]]:
        """(one sentence, the best feasible hosts best first, the rejecting filters with
        their host counts, most first). With `placed_on`, the instance's own reservation
        counts as free, as if it were being placed now."""
        compiled = probes(request)
        if not compiled:
            return (f"{request.instance} has no candidate variety to place", [], [])
        feasible: list[_Ranked] = []
        refused: list[_Refused] = []
        for state in self._states_without(request.instance):
            verdict = self._judge(state, compiled)
            if isinstance(verdict, _Ranked):
                feasible.append(verdict)
            else:
                refused.append(verdict)
        feasible.sort(key=lambda r: r.rank)
        total = len(feasible)
        best = [
            Verdict(r.state.host_id, True, "", "", float(total - 1 - at), r.probe.variety)
            for at, r in enumerate(feasible[:BEST_SHOWN])
        ]
        rejections = _rejections(refused)
        summary = self._summary(request, placed_on, feasible, refused, rejections)
        return summary, best, rejections

    # Internals --------------------------------------------------------------------------

    def _choose(self, compiled: list[Probe]) -> tuple[Choice, Probe] | None:
        best: tuple[Choice, Probe] | None = None
        for probe in compiled:
            if best is not None and probe.position != best[1].position:
                break  # an earlier candidate fits somewhere: later ones never rank above
            choice = self.strategy.search(self.ledger, probe)
            if choice is not None and (best is None or choice.key < best[0].key):
                best = (choice, probe)
        return best

    def _states_without(self, instance: str) -> Iterator[HostState]:
        reservation = self.ledger.reservation(instance)
        for state in self.ledger.states():
            if reservation is not None and reservation.host_id == state.host_id:
                yield state.without(instance)
            else:
                yield state

    def _judge(self, state: HostState, compiled: list[Probe]) -> _Ranked | _Refused:
        failures: dict[int, tuple[str, str]] = {}
        for probe in compiled:
            outcome = evaluate(state, probe)
            if outcome and isinstance(outcome[0], str):
                name, reason = str(outcome[0]), str(outcome[1])
                known = failures.get(probe.position)
                # Of the vendors tried for one variety, report the one that got furthest.
                if known is None or STAGE[name] > STAGE[known[0]]:
                    failures[probe.position] = (name, reason)
                continue
            positions = tuple(int(p) for p in outcome)
            rank = (probe.position, self.strategy.key(state, probe, positions))
            return _Ranked(rank, state, probe)
        first = failures[min(failures)]
        if len(failures) == 1:
            return _Refused(state, first[0], first[1])
        varieties = {p.position: p.variety for p in compiled}
        reason = "; ".join(
            f"{varieties[position]}: {name}: {why}"
            for position, (name, why) in sorted(failures.items())
        )
        return _Refused(state, first[0], reason)

    def _summary(
        self,
        request: PlacementRequest,
        placed_on: str | None,
        feasible: list[_Ranked],
        refused: list[_Refused],
        rejections: list[Rejection],
    ) -> str:
        instance, strategy = request.instance, self.strategy.name
        hosts = len(self.ledger)
        if not hosts:
            return f"{instance} cannot be placed: no host has joined the fleet"
        why = ""
        if rejections:
            top = rejections[0]
            example = f" ({top.examples[0]})" if top.examples else ""
            why = f"; {top.filter} rejects {counted(top.hosts, 'host')}{example}"
        # A placed instance stays where it runs even when its host would not take it now
        # (cordoned, down, full): placement decides only where new instances go.
        refusal = next(
            (f"{r.filter}: {r.reason}" for r in refused if r.state.host_id == placed_on),
            "it is no longer in the fleet",
        )
        if not feasible:
            if placed_on:
                return (
                    f"{instance} runs on {placed_on}, which would not take it now "
                    f"({refusal}); no other host passes every filter{why}"
                )
            return (
                f"{instance} cannot be placed on any of {counted(hosts, 'host')}: no host "
                f"passes every filter{why}"
            )
        first = feasible[0]
        if placed_on is None:
            return (
                f"{instance} is not placed yet; {strategy} would choose {first.state.host_id}"
                f"{_variety(first.probe.variety)} of {counted(len(feasible), 'feasible host')}"
                f"{why}"
            )
        at = next((i for i, r in enumerate(feasible) if r.state.host_id == placed_on), None)
        if at is None:
            return (
                f"{instance} runs on {placed_on}, which would not take it now ({refusal}); "
                f"{strategy} would choose {first.state.host_id}"
            )
        if at == 0:
            return (
                f"{instance} runs on {placed_on}{_variety(feasible[0].probe.variety)}: "
                f"{strategy} ranks it first of {counted(len(feasible), 'feasible host')}"
            )
        return (
            f"{instance} runs on {placed_on}, which {strategy} now ranks {ordinal(at + 1)} of "
            f"{counted(len(feasible), 'feasible host')}; it would choose "
            f"{first.state.host_id} today, and does not move running instances for that"
        )


def _variety(variety: str) -> str:
    """ " (variety nvidia)", or nothing for a service that defines no varieties."""
    return f" (variety {variety})" if variety else ""


def _signature(request: PlacementRequest) -> Hashable:
    """What decides whether a request fits: all of it but the instance's name."""
    c = request.constraints
    return (
        request.deployment,
        request.candidates,
        (c.gpu_vendor, c.gpu_model, c.min_vram_bytes, tuple(sorted(c.host_labels.items()))),
        c.spread_across_hosts,
        request.avoid_hosts,
    )


def _rejections(refused: list[_Refused]) -> list[Rejection]:
    counts = Counter(r.filter for r in refused)
    examples: dict[str, list[str]] = {}
    for r in sorted(refused, key=lambda r: r.state.host_id):
        shown = examples.setdefault(r.filter, [])
        if len(shown) < EXAMPLES_SHOWN:
            shown.append(f"{r.state.host_id}: {r.reason}")
    ordered = sorted(counts.items(), key=lambda item: (-item[1], STAGE.get(item[0], 99)))
    return [Rejection(name, count, tuple(examples[name])) for name, count in ordered]
