"""fgd (Fragmentation Gradient Descent): each instance goes where the GPU capacity that the
fleet's typical requests cannot use grows least."""

from __future__ import annotations

import pytest

from ozwald_orchestrator.placement import FleetLedger, Placement, Scheduler, Unplaced
from ozwald_orchestrator.placement.fgd import MILLI, Fgd, Shape
from ozwald_orchestrator.placement.registry import StrategyRegistry
from ozwald_orchestrator.placement.strategies import Binpack
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


def _hold(ledger: FleetLedger, instance: str, host_id: str, vram_gib: int, gpu: int = 0) -> None:
    ledger.reserve(instance, instance.rsplit("-", 1)[0], host_id, shared(vram_gib), (gpu,))


def _half_gpu_fleet() -> FleetLedger:
    """Four one-GPU (80 GiB) hosts. Most of what runs takes half a GPU (c and d are full of
    it); a runs a 24 GiB instance (56 GiB free), b a 36 GiB one (44 GiB free)."""
    ledger = ledger_of(*(host(h, gpus=1) for h in ("a", "b", "c", "d")))
    _hold(ledger, "small-0", "a", 24)
    _hold(ledger, "mid-0", "b", 36)
    for n, on in enumerate(("c", "c", "d", "d")):
        _hold(ledger, f"half-{n}", on, 40)
    return ledger


def test_it_keeps_room_for_what_the_fleet_typically_runs() -> None:
    # 16 GiB more: b would be left with 28 GiB, too little for a typical half GPU; a keeps
    # 40 GiB, exactly one more half GPU. Best fit takes b; fgd takes a.
    assert Scheduler(_half_gpu_fleet(), Binpack()).place(request("new-0", shared(16))) == Placement(
        "new-0", "b", "nvidia", (0,)
    )
    assert Scheduler(_half_gpu_fleet(), Fgd()).place(request("new-0", shared(16))) == Placement(
        "new-0", "a", "nvidia", (0,)
    )


def test_the_typical_shapes_are_what_runs_by_frequency() -> None:
    strategy = Fgd()
    Scheduler(_half_gpu_fleet(), strategy).place(request("new-0", shared(16)))
    typical = dict(strategy.typical())
    assert typical == pytest.approx(
        {
            Shape(NVIDIA, 1, MILLI // 2, 2000, 8 * GIB): 4 / 6,
            Shape(NVIDIA, 1, 300, 2000, 8 * GIB): 1 / 6,
            Shape(NVIDIA, 1, 450, 2000, 8 * GIB): 1 / 6,
        }
    )


def test_cpu_work_goes_where_it_starves_no_gpu() -> None:
    # Typical work: a whole GPU with 8 cores. On the GPU host, 6 cores for a CPU-only
    # instance would leave 2: its free GPU could no longer be fed.
    def fleet() -> FleetLedger:
        ledger = ledger_of(host("gpu", gpus=2, cpus=24), host("cpus", cpus=12))
        ledger.reserve("train-0", "train", "gpu", whole(1, cpus=8), (0,))
        return ledger

    choice = Scheduler(fleet(), Fgd()).place(request("web-0", cpu_only(cpus=6)))
    assert isinstance(choice, Placement) and choice.host_id == "cpus"


def test_with_nothing_placed_the_request_itself_is_the_typical_shape() -> None:
    strategy = Fgd()
    scheduler = Scheduler(ledger_of(host("big", gpus=2), host("small", gpus=1)), strategy)
    assert scheduler.place(request("w-0", whole(1))) == Placement("w-0", "small", "nvidia", (0,))
    [(shape, weight)] = strategy.typical()
    assert (shape.count, shape.share, weight) == (1, MILLI, 1.0)


def test_explain_ranks_hosts_as_placement_would_even_before_any_placement() -> None:
    # Nothing was searched yet (an orchestrator just restarted): the typical shapes are
    # counted from the ledger all the same.
    scheduler = Scheduler(_half_gpu_fleet(), Fgd())
    summary, best, rejections = scheduler.explain(request("new-0", shared(16)), None)
    assert [v.host_id for v in best] == ["a", "b"]
    assert "fgd would choose a" in summary
    assert [(r.filter, r.hosts) for r in rejections] == [("gpu", 2)]


def test_nothing_fits_is_unplaced_with_reasons() -> None:
    scheduler = Scheduler(ledger_of(host("a", gpus=1)), Fgd())
    assert isinstance(scheduler.place(request("x-0", whole(2))), Unplaced)


def test_fgd_is_loaded_through_the_entry_point_like_any_plugin() -> None:
    assert isinstance(StrategyRegistry.discover().load("fgd"), Fgd)
