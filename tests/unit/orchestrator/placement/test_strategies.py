"""Strategies are chosen by name, and a plugin that fits the protocol just works."""

from __future__ import annotations

import pytest

from ozwald_orchestrator.placement import Placement, Scheduler, Strategy, strategy_by_name
from ozwald_orchestrator.placement.filters import Probe
from ozwald_orchestrator.placement.host_state import HostState
from ozwald_orchestrator.placement.ledger import FleetLedger
from ozwald_orchestrator.placement.strategies import Choice, SortKey, scan_all
from tests.unit.orchestrator.placement.fleet import cpu_only, host, ledger_of, request


def test_the_built_in_strategies_are_found_by_name() -> None:
    assert strategy_by_name("binpack").name == "binpack"
    assert strategy_by_name("spread").name == "spread"


def test_an_unknown_name_lists_the_known_ones_and_the_closest() -> None:
    with pytest.raises(ValueError) as raised:
        strategy_by_name("sprad")

    message = str(raised.value)
    assert "unknown placement strategy 'sprad' (did you mean 'spread'?)" in message
    assert "known strategies: binpack, spread" in message


def test_an_unrelated_name_gets_no_guess() -> None:
    with pytest.raises(ValueError, match=r"^unknown placement strategy 'zzz'; known"):
        strategy_by_name("zzz")


class MostCores:
    """A plugin without an index: the host with the most cores left."""

    name = "most-cores"

    def key(self, state: HostState, probe: Probe, positions: tuple[int, ...]) -> SortKey:
        return (probe.cpu - state.free_cpu, state.seq)

    def search(self, ledger: FleetLedger, probe: Probe) -> Choice | None:
        return scan_all(self, ledger, probe)


def test_a_plugin_that_fits_the_protocol_places_and_explains() -> None:
    plugin: Strategy = MostCores()
    scheduler = Scheduler(ledger_of(host("few", cpus=4), host("many", cpus=64)), plugin)

    assert scheduler.place(request("a-0", cpu_only())) == Placement("a-0", "many", "cpu", ())
    summary, best, _ = scheduler.explain(request("a-1", cpu_only()), None)
    assert [v.host_id for v in best] == ["many", "few"]
    assert "most-cores would choose many" in summary
