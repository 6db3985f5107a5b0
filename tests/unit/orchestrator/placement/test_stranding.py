"""Binpack keeps the cores and memory that GPUs need next to them."""

from __future__ import annotations

from ozwald_orchestrator.placement import Placement, Scheduler, strategy_by_name
from ozwald_orchestrator.placement.stranding import GpuWork, stranded
from tests.unit.orchestrator.placement.fleet import (
    GIB,
    cpu_only,
    host,
    ledger_of,
    request,
    whole,
)


def test_the_typical_gpu_work_counts_shares_of_gpus() -> None:
    work = GpuWork()
    assert work.typical() is None

    work.add("a-0", 4000, 32 * GIB, [1.0])  # a whole GPU, 4 cores, 32 GiB
    work.add("b-0", 1000, 2 * GIB, [0.25, 0.25])  # half a GPU in two quarters
    assert work.typical() == (5000 / 1.5, 34 * GIB / 1.5)

    work.remove("a-0")
    work.remove("a-0")
    assert work.typical() == (2000.0, 4 * GIB)


def test_stranded_gpus_are_those_the_free_cores_or_memory_cannot_feed() -> None:
    typical = (4000.0, 16.0 * GIB)  # 4 cores and 16 GiB per GPU

    assert stranded(2.0, 8000, 64 * GIB, typical) == 0.0
    assert stranded(2.0, 4000, 64 * GIB, typical) == 1.0  # cores for one GPU only
    assert stranded(2.0, 8000, 8 * GIB, typical) == 1.5  # memory for half a GPU
    assert stranded(0.0, 0, 0, typical) == 0.0


def test_cpu_work_goes_where_it_strands_no_gpu() -> None:
    ledger = ledger_of(
        host("busy", gpus=1, vram_gib=24, cpus=4),
        host("lean", gpus=1, vram_gib=24, cpus=8),
        host("rich", gpus=2, vram_gib=24, cpus=64),
    )
    # The fleet's GPU work so far: 4 cores per GPU.
    ledger.reserve("gpu-0", "gpu", "busy", whole(1, cpus=4, memory_gib=1), (0,))
    scheduler = Scheduler(ledger, strategy_by_name("binpack"))

    # Plain best fit would take "lean" (less VRAM free); its GPU would be left with 2 cores.
    placed = scheduler.place(request("batch-0", cpu_only(memory_gib=1, cpus=6)))

    assert placed == Placement("batch-0", "rich", "cpu", ())
    _, best, _ = scheduler.explain(request("batch-1", cpu_only(memory_gib=1, cpus=6)), None)
    assert [v.host_id for v in best] == ["rich", "lean"]


def test_cpu_light_gpu_work_uses_a_gpu_that_was_stranded() -> None:
    ledger = ledger_of(
        host("starved", gpus=3, vram_gib=24, cpus=9),
        host("single", gpus=1, vram_gib=24, cpus=64),
    )
    # 8 cores per GPU is typical; "starved" has 1 core left for its 2 free GPUs.
    ledger.reserve("heavy-0", "heavy", "starved", whole(1, cpus=8, memory_gib=1), (0,))
    scheduler = Scheduler(ledger, strategy_by_name("binpack"))

    # Plain best fit would fill "single" (no untouched GPU left after); a task that needs
    # one core can use a GPU "starved" cannot otherwise feed.
    placed = scheduler.place(request("light-0", whole(1, cpus=1, memory_gib=1)))

    assert placed == Placement("light-0", "starved", "nvidia", (1,))
