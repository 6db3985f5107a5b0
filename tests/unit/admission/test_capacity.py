"""Memory and CPU: the arithmetic, what leaving services give back, what staying ones keep."""

from __future__ import annotations

from ozwald.agent.v1 import plan_pb2

from ozwald_agent.admission import Footprint
from tests.unit.admission.builders import (
    GIB,
    FakeFootprints,
    action,
    host,
    make_plan,
    reasons,
    running,
    service,
)


def test_insufficient_memory_is_refused_with_the_numbers() -> None:
    small = host(memory_gib=64, available_gib=20)

    result = make_plan([service("big", memory=24 * GIB)], on=small)

    assert reasons(result) == [("big", "INSUFFICIENT_MEMORY")]
    refusal = result.refusals[0]
    assert refusal.message == (
        "needs 24.0 GiB memory (declared); 20.0 GiB is free for it of 64.0 GiB: "
        "20.0 GiB available on the host"
    )
    assert refusal.quantity == plan_pb2.Quantity(
        needed=24 * GIB, available=20 * GIB, capacity=64 * GIB, unit=plan_pb2.RESOURCE_UNIT_BYTES
    )
    assert "resources.memory" in refusal.remedy


def test_services_admitted_earlier_count_against_later_ones() -> None:
    result = make_plan(
        [service("a", memory=12 * GIB), service("b", memory=10 * GIB)],
        on=host(memory_gib=64, available_gib=20),
    )

    # Bigger first: a fits, then b finds 8 GiB.
    assert reasons(result) == [("b", "INSUFFICIENT_MEMORY")]
    assert result.refusals[0].message.endswith(
        "8.0 GiB is free for it of 64.0 GiB: 20.0 GiB available on the host "
        "- 12.0 GiB claimed by 1 other service admitted before it (default:a)"
    )
    assert [r.name for r in result.refusals[0].involved] == ["a"]


def test_a_stopping_service_gives_its_memory_back() -> None:
    old = service("old", memory=8 * GIB)

    result = make_plan(
        [service("new", memory=24 * GIB)], [running(old)], on=host(memory_gib=64, available_gib=20)
    )

    assert result.admitted, result.refusals
    assert result.budget.memory == plan_pb2.MemoryBudget(
        total_bytes=64 * GIB,
        available_bytes=20 * GIB,
        released_bytes=8 * GIB,
        claimed_bytes=24 * GIB,
        left_bytes=4 * GIB,
    )


def test_the_arithmetic_shows_what_leaving_services_give_back() -> None:
    old = service("old", memory=8 * GIB)

    result = make_plan(
        [service("new", memory=40 * GIB)], [running(old)], on=host(memory_gib=64, available_gib=20)
    )

    assert result.refusals[0].message == (
        "needs 40.0 GiB memory (declared); 28.0 GiB is free for it of 64.0 GiB: 20.0 GiB "
        "available on the host + 8.0 GiB given back by 1 stopped or restarted service"
    )


def test_a_restarted_service_gives_its_old_figure_back_and_claims_its_new_one() -> None:
    before = service("llm", profile="short", memory=16 * GIB)
    after = service("llm", profile="long", memory=30 * GIB)

    result = make_plan([after], [running(before)], on=host(memory_gib=64, available_gib=20))

    assert result.admitted, result.refusals
    assert result.budget.memory.released_bytes == 16 * GIB
    assert result.budget.memory.claimed_bytes == 30 * GIB


def test_kept_and_persistent_services_are_not_counted_twice() -> None:
    kept = service("kept", memory=16 * GIB)
    db = service("db", memory=16 * GIB)
    now = [running(kept), running(db, persistent=True)]

    result = make_plan([kept, service("new", memory=18 * GIB)], now, on=host(available_gib=20))

    # MemAvailable already leaves out what kept and persistent services use.
    assert result.admitted, result.refusals
    assert result.budget.memory.claimed_bytes == 18 * GIB


def test_a_footprint_replaces_declared_memory_and_says_so() -> None:
    book = FakeFootprints({("default", "llm", "cpu", ""): Footprint(peak_memory_bytes=6 * GIB)})
    spec = service("llm", variety="cpu", memory=32 * GIB)

    measured = make_plan([spec], on=host(available_gib=20), footprints=book)
    declared = make_plan([spec], on=host(available_gib=20))

    assert measured.admitted
    figure = action(measured, "llm").resources.memory
    assert figure.source == plan_pb2.FIGURE_SOURCE_FOOTPRINT
    assert (figure.accounted_bytes, figure.declared_bytes, figure.footprint_bytes) == (
        6 * GIB,
        32 * GIB,
        6 * GIB,
    )
    assert book.asked == [("default", "llm", "cpu", "")]
    assert reasons(declared) == [("llm", "INSUFFICIENT_MEMORY")]
    assert action(declared, "llm").resources.memory.source == plan_pb2.FIGURE_SOURCE_DECLARED
    assert not action(declared, "llm").resources.memory.HasField("footprint_bytes")


def test_a_service_without_memory_figure_counts_none_and_says_so() -> None:
    result = make_plan([service("tiny")], on=host(available_gib=0))

    assert result.admitted
    figure = action(result, "tiny").resources.memory
    assert (figure.accounted_bytes, figure.source) == (0, plan_pb2.FIGURE_SOURCE_NONE)


def test_declared_cpus_of_everything_that_will_run_must_fit_the_usable_cores() -> None:
    kept = service("kept", cpus=2)
    db = service("db", cpus=1)
    now = [running(kept), running(db, persistent=True)]

    result = make_plan([kept, service("new", cpus=2)], now, on=host(cores=4))

    assert reasons(result) == [("new", "INSUFFICIENT_CPU")]
    assert result.refusals[0].message == (
        "needs 2 CPU cores (declared); 1 of 4 usable cores left, after 3 declared by "
        "2 other services that will run (default:db, default:kept)"
    )
    assert result.refusals[0].quantity == plan_pb2.Quantity(
        needed=2, available=1, capacity=4, unit=plan_pb2.RESOURCE_UNIT_CPU_CORES
    )
    assert result.budget.cpu == plan_pb2.CpuBudget(usable_cores=4, claimed_cores=3)


def test_cpus_of_a_stopping_service_are_free_and_fractions_add_up() -> None:
    old = service("old", cpus=3)

    result = make_plan(
        [service(n, cpus=c) for n, c in (("a", 0.1), ("b", 0.2), ("c", 3.7))],
        [running(old)],
        on=host(cores=4),
    )

    assert result.admitted, result.refusals
    assert abs(result.budget.cpu.claimed_cores - 4.0) < 1e-9
