"""Explanations of a service that defines no varieties say nothing about a variety,
rather than an empty "(variety )"."""

from __future__ import annotations

from ozwald_orchestrator.placement import Demand, Placement, Scheduler, strategy_by_name
from tests.unit.orchestrator.placement.fleet import GIB, ledger_of, request
from tests.unit.orchestrator.placement.fleet import host as capacity

PLAIN = Demand("", 0, 0, 0, 2 * GIB, 1.0, frozenset())


def test_a_service_without_varieties_is_explained_without_one() -> None:
    scheduler = Scheduler(ledger_of(capacity("h1"), capacity("h2")), strategy_by_name("binpack"))

    waiting, _, _ = scheduler.explain(request("plain-0", PLAIN), None)
    assert waiting == "plain-0 is not placed yet; binpack would choose h1 of 2 feasible hosts"

    placed = scheduler.place(request("plain-0", PLAIN))
    assert placed == Placement("plain-0", "h1", "", ())
    running, _, _ = scheduler.explain(request("plain-0", PLAIN), "h1")
    assert running == "plain-0 runs on h1: binpack ranks it first of 2 feasible hosts"
    assert "variety" not in waiting + running
