"""The FleetLedger: reservations survive new profiles, hosts that go down take nothing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ozwald_orchestrator.placement import (
    Placement,
    Scheduler,
    UnknownHost,
    Unplaced,
    strategy_by_name,
)
from tests.unit.orchestrator.placement.fleet import (
    GIB,
    NVIDIA,
    cpu_only,
    host,
    ledger_of,
    request,
    shared,
    whole,
)


def test_a_new_profile_keeps_the_reservations() -> None:
    ledger = ledger_of(host("h", gpus=2, memory_gib=64))
    ledger.reserve("llm-0", "llm", "h", shared(30), (1,))

    ledger.upsert_host(host("h", gpus=2, memory_gib=128))

    free = ledger.free("h")
    assert free.memory_bytes == 120 * GIB
    assert [g.free_bytes for g in free.gpus] == [80 * GIB, 50 * GIB]
    assert free.instances == ("llm-0",)


def test_a_gpu_that_disappears_drops_out_of_the_reservation() -> None:
    ledger = ledger_of(host("h", gpus=2))
    ledger.reserve("big-0", "big", "h", whole(2), (0, 1))

    ledger.upsert_host(host("h", gpus=1))

    assert [g.free_bytes for g in ledger.free("h").gpus] == [0]
    ledger.release("big-0")
    assert [g.free_bytes for g in ledger.free("h").gpus] == [80 * GIB]


def test_release_gives_everything_back_and_ignores_unknown_instances() -> None:
    ledger = ledger_of(host("h", gpus=1, memory_gib=64, cpus=8))
    before = ledger.free("h")
    ledger.reserve("web-0", "web", "h", replace(cpu_only(), host_ports=frozenset({80})), ())
    ledger.reserve("llm-0", "llm", "h", shared(10, cpus=1.5), (0,))
    assert ledger.free("h").ports_in_use == frozenset({80})
    assert ledger.free("h").cpus == 4.5

    ledger.release("web-0")
    ledger.release("llm-0")
    ledger.release("never-placed")

    assert ledger.free("h") == before


def test_hosts_that_are_not_schedulable_take_nothing_new() -> None:
    ledger = ledger_of(host("h1"), host("h2", memory_gib=512))
    scheduler = Scheduler(ledger, strategy_by_name("binpack"))
    ledger.set_schedulable("h1", False, "host down")

    assert scheduler.place(request("a-0", cpu_only())) == Placement("a-0", "h2", "cpu", ())
    ledger.set_schedulable("h2", False, "cordoned")
    outcome = scheduler.place(request("a-1", cpu_only()))
    assert isinstance(outcome, Unplaced)
    assert outcome.rejections[0].examples == ("h1: host down", "h2: cordoned")

    ledger.set_schedulable("h1", True)
    assert scheduler.place(request("a-2", cpu_only())) == Placement("a-2", "h1", "cpu", ())


def test_removing_a_host_forgets_its_reservations() -> None:
    ledger = ledger_of(host("h1"), host("h2"))
    ledger.reserve("a-0", "a", "h1", cpu_only(), ())

    ledger.remove_host("h1")
    ledger.remove_host("h1")

    assert ledger.host_ids() == ["h2"]
    assert ledger.reservation("a-0") is None
    assert ledger.deployment_hosts("a") == {}


def test_reserving_on_an_unknown_host_or_gpu_says_so() -> None:
    ledger = ledger_of(host("h", gpus=1))

    with pytest.raises(UnknownHost, match="no host 'nowhere' in the fleet"):
        ledger.reserve("a-0", "a", "nowhere", cpu_only(), ())
    with pytest.raises(ValueError, match=r"names GPUs \[3\] of vendor nvidia"):
        ledger.reserve("a-0", "a", "h", shared(10, vendor=NVIDIA), (3,))


def test_a_reservation_that_does_not_fit_is_kept_and_leaves_nothing_free() -> None:
    ledger = ledger_of(host("h", memory_gib=16))
    ledger.reserve("fat-0", "fat", "h", cpu_only(memory_gib=20), ())

    assert ledger.free("h").memory_bytes == -4 * GIB
    outcome = Scheduler(ledger, strategy_by_name("binpack")).place(request("x-0", cpu_only(1)))
    assert isinstance(outcome, Unplaced)
    assert outcome.rejections[0].examples == ("h: needs 1.0 GiB, 0.0 GiB free",)


def test_membership_is_by_host_id() -> None:
    ledger = ledger_of(host("h1"))

    assert "h1" in ledger
    assert "h2" not in ledger
    ledger.remove_host("h1")
    assert "h1" not in ledger
