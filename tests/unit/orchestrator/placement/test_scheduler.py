"""What the Scheduler chooses, and the reasons it gives when it cannot."""

from __future__ import annotations

from ozwald_orchestrator.placement import (
    Constraints,
    Demand,
    Gpu,
    HostCapacity,
    Placement,
    PlacementRequest,
    Scheduler,
    Unplaced,
    strategy_by_name,
)
from tests.unit.orchestrator.placement.fleet import (
    AMD,
    GIB,
    NVIDIA,
    cpu_only,
    host,
    ledger_of,
    request,
    shared,
    whole,
)


def _binpack(*hosts: HostCapacity) -> Scheduler:
    return Scheduler(ledger_of(*hosts), strategy_by_name("binpack"))


def test_binpack_fills_the_gpu_that_is_already_in_use() -> None:
    scheduler = _binpack(host("big", gpus=2), host("small", gpus=1, vram_gib=24))
    first = scheduler.place(request("a-0", shared(20)))
    second = scheduler.place(request("a-1", shared(30)))
    third = scheduler.place(request("a-2", shared(30)))

    assert first == Placement("a-0", "small", "nvidia", (0,))
    assert second == Placement("a-1", "big", "nvidia", (0,))
    # GPU 0 has 50 GiB free, GPU 1 80: the least free that is still enough, like the agent.
    assert third == Placement("a-2", "big", "nvidia", (0,))


def test_spread_prefers_hosts_without_the_deployment_then_the_roomiest() -> None:
    scheduler = Scheduler(
        ledger_of(host("h1", memory_gib=64), host("h2", memory_gib=128), host("h3")),
        strategy_by_name("spread"),
    )
    placed = [scheduler.place(request(f"web-{i}", cpu_only())) for i in range(4)]

    hosts = [p.host_id for p in placed if isinstance(p, Placement)]
    assert hosts[:3] == ["h3", "h2", "h1"]
    assert hosts[3] == "h3"


def test_an_earlier_variety_wins_over_a_better_fit_for_a_later_one() -> None:
    scheduler = _binpack(host("gpu", gpus=1), host("cpu"))
    placed = scheduler.place(request("svc-0", shared(10), cpu_only()))

    assert placed == Placement("svc-0", "gpu", "nvidia", (0,))


def test_any_vendor_uses_nvidia_first_on_a_host_with_both() -> None:
    ledger = ledger_of(
        HostCapacity(
            "mixed",
            {},
            (
                Gpu(0, "amd-0", AMD, "AMD Instinct MI300X", 192 * GIB),
                Gpu(0, "nvidia-0", NVIDIA, "NVIDIA H100 80GB HBM3", 80 * GIB),
            ),
            256 * GIB,
            32,
        )
    )
    scheduler = Scheduler(ledger, strategy_by_name("binpack"))
    any_vendor = Demand("gpu", 1, 0, 0, GIB, 1)

    def held() -> list[int]:
        return [g.vendor for g in ledger.free("mixed").gpus if g.free_bytes == 0]

    assert scheduler.place(request("a-0", any_vendor)) == Placement("a-0", "mixed", "gpu", (0,))
    assert held() == [NVIDIA]
    assert scheduler.place(request("a-1", any_vendor)) == Placement("a-1", "mixed", "gpu", (0,))
    assert held() == [NVIDIA, AMD]


def test_each_filter_says_why_in_words() -> None:
    ledger = ledger_of(
        host("cpu-box", memory_gib=64, labels={"zone": "a"}),
        host("a100", gpus=2, model="NVIDIA A100 40GB", vram_gib=40, labels={"zone": "a"}),
        host("zone-b", gpus=8, labels={"zone": "b"}),
        host("amd", gpus=1, vendor=AMD, model="AMD MI300X", vram_gib=192),
        host("down", gpus=8),
        host("busy", gpus=8, memory_gib=6, labels={"zone": "a"}),
    )
    ledger.set_schedulable("down", False, "host down")
    scheduler = Scheduler(ledger, strategy_by_name("binpack"))
    wanted = request(
        "llm-0",
        shared(60, memory_gib=24),
        constraints=Constraints(host_labels={"zone": "a"}),
    )

    outcome = scheduler.place(wanted)

    assert isinstance(outcome, Unplaced)
    reasons = {r.filter: r.examples for r in outcome.rejections}
    assert reasons == {
        "labels": (
            "amd: label zone=a: host has no zone label",
            "zone-b: label zone=a: host has zone=b",
        ),
        "unschedulable": ("down: host down",),
        "gpu-vendor": ("cpu-box: needs nvidia, host has none",),
        "vram": ("a100: needs 60.0 GiB VRAM on one GPU, the largest has 40.0 GiB",),
        "memory": ("busy: needs 24.0 GiB, 6.0 GiB free",),
    }
    assert outcome.rejections[0].filter == "labels"
    assert outcome.summary.startswith("llm-0 cannot be placed on any of 6 hosts")
    assert "labels rejects 2 hosts" in outcome.summary


def test_spread_across_hosts_ports_and_avoid_refuse_with_their_reasons() -> None:
    scheduler = _binpack(host("h1"), host("h2"), host("h3"))
    web = cpu_only(ports=frozenset({8001}))
    spread = Constraints(spread_across_hosts=True)
    assert isinstance(scheduler.place(request("web-0", web, constraints=spread)), Placement)
    assert isinstance(scheduler.place(request("api-0", web)), Placement)

    outcome = scheduler.place(request("web-1", web, constraints=spread, avoid=frozenset({"h3"})))

    assert isinstance(outcome, Unplaced)
    examples = {r.filter: r.examples for r in outcome.rejections}
    assert examples["avoid"] == ("h3: instance failed here recently",)
    first, second = sorted(("spread", "ports"), key=lambda f: examples[f][0])
    joined = [*examples[first], *examples[second]]
    assert any(e.endswith(": already runs web-0") for e in joined)
    assert any(e.endswith(": port 8001 in use") for e in joined)


def test_explain_leaves_the_ledger_alone_and_frees_the_instances_own_share() -> None:
    ledger = ledger_of(host("only", gpus=1, vram_gib=24, memory_gib=32))
    scheduler = Scheduler(ledger, strategy_by_name("binpack"))
    llm = request("llm-0", shared(24, memory_gib=32))
    assert scheduler.place(llm) == Placement("llm-0", "only", "nvidia", (0,))
    before = ledger.free("only")

    summary, best, rejections = scheduler.explain(llm, "only")

    assert ledger.free("only") == before
    assert [v.host_id for v in best] == ["only"]
    assert best[0].feasible and best[0].variety == "nvidia"
    assert rejections == []
    assert (
        summary == "llm-0 runs on only (variety nvidia): binpack ranks it first of 1 feasible host"
    )
    # Another instance of the same size does not fit beside it.
    other, _, rejected = scheduler.explain(request("llm-1", shared(24, memory_gib=32)), None)
    assert [r.filter for r in rejected] == ["gpu"]
    assert other.startswith("llm-1 cannot be placed on any of 1 host")


def test_explain_ranks_the_best_hosts_with_scores_that_fall() -> None:
    scheduler = _binpack(*(host(f"h{i}", memory_gib=16 + i) for i in range(12)))
    summary, best, _ = scheduler.explain(request("svc-0", cpu_only()), None)

    assert [v.host_id for v in best] == [f"h{i}" for i in range(10)]
    assert [v.score for v in best] == [float(11 - i) for i in range(10)]
    assert summary.startswith("svc-0 is not placed yet; binpack would choose h0")


def test_placing_again_moves_the_instance_and_frees_its_old_share() -> None:
    ledger = ledger_of(host("a", memory_gib=16), host("b", memory_gib=32))
    scheduler = Scheduler(ledger, strategy_by_name("binpack"))
    assert scheduler.place(request("svc-0", cpu_only(memory_gib=16))) == Placement(
        "svc-0", "a", "cpu", ()
    )

    again = scheduler.place(request("svc-0", cpu_only(memory_gib=16), avoid=frozenset({"a"})))

    assert again == Placement("svc-0", "b", "cpu", ())
    assert ledger.free("a").memory_bytes == 16 * GIB
    assert ledger.free("b").instances == ("svc-0",)


def test_a_variety_that_contradicts_the_vendor_constraint_is_refused_everywhere() -> None:
    scheduler = _binpack(host("nv", gpus=1))
    outcome = scheduler.place(
        request("svc-0", whole(1), constraints=Constraints(gpu_vendor=AMD)),
    )

    assert isinstance(outcome, Unplaced)
    assert outcome.rejections[0].examples == (
        "nv: variety nvidia uses nvidia GPUs and the deployment requires amd",
    )


def test_replicas_that_cannot_fit_share_the_first_ones_reasons() -> None:
    scheduler = _binpack(host("h", gpus=2))
    outcomes = scheduler.place_all(
        [request(f"big-{i}", whole(2)) for i in range(3)] + [request("small-0", shared(10))]
    )

    assert isinstance(outcomes[0], Placement)
    second, third = outcomes[1], outcomes[2]
    assert isinstance(second, Unplaced) and isinstance(third, Unplaced)
    assert second.summary.startswith("big-1 cannot be placed on any of 1 host")
    assert third.summary.startswith("big-2 cannot be placed, like big-1 that asks for the same")
    assert third.rejections == second.rejections
    assert isinstance(outcomes[3], Unplaced)  # both GPUs are held whole


def test_a_gpu_without_room_says_how_much_the_roomiest_has() -> None:
    scheduler = _binpack(host("h", gpus=2, vram_gib=24))
    assert isinstance(scheduler.place(request("a-0", shared(20))), Placement)
    assert isinstance(scheduler.place(request("a-1", shared(16))), Placement)

    outcome = scheduler.place(request("b-0", shared(10)))

    assert isinstance(outcome, Unplaced)
    assert outcome.rejections[0].examples == (
        "h: needs 10.0 GiB VRAM on 1 nvidia GPU, the roomiest has 8.0 GiB free",
    )


def test_alternatives_of_one_variety_rank_together_by_what_they_leave() -> None:
    scheduler = _binpack(
        host("t4", gpus=1, model="NVIDIA Tesla T4", vram_gib=16),
        host("v100", gpus=1, model="NVIDIA Tesla V100-SXM2-32GB", vram_gib=32),
    )
    # Half a GPU, whichever it is: 8 GiB of a T4, 16 GiB of a V100.
    half = (
        Demand("gpu", 1, NVIDIA, 16 * GIB, GIB, 1, gpu_model="V100"),
        Demand("gpu", 1, NVIDIA, 8 * GIB, GIB, 1, gpu_model="T4"),
    )
    first = scheduler.place(PlacementRequest("a-0", "a", half))
    second = scheduler.place(PlacementRequest("a-1", "a", half))

    assert first == Placement("a-0", "t4", "gpu", (0,))  # leaves 8 GiB, the V100 16
    assert second == Placement("a-1", "t4", "gpu", (0,))  # leaves nothing
    third = scheduler.place(PlacementRequest("a-2", "a", half))
    assert third == Placement("a-2", "v100", "gpu", (0,))
