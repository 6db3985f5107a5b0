"""The plan as a whole: atomic, every refusal collected, pure, complete."""

from __future__ import annotations

from ozwald.agent.v1 import plan_pb2

from ozwald_agent.admission import NoFootprints, RunningService, fingerprint, plan
from tests.unit.admission.builders import (
    GB,
    GIB,
    NVIDIA,
    FakeHostFacts,
    action,
    devices,
    host,
    make_plan,
    reasons,
    running,
    service,
)


def test_one_refusal_refuses_the_whole_plan_and_every_problem_is_reported() -> None:
    facts = FakeHostFacts(listening={("127.0.0.1", 8080)})
    desired = [
        service("fine", memory=GB),
        service(
            "troubled",
            image="missing:1",
            memory=40 * GIB,
            cpus=64,
            gpus=1,
            vendor=NVIDIA,
            ports=[8080],
            depends_on=["nowhere"],
        ),
    ]

    result = make_plan(desired, on=host(cores=8, available_gib=32), facts=facts)

    assert not result.admitted
    assert reasons(result) == [
        ("troubled", "IMAGE_MISSING"),
        ("troubled", "INSUFFICIENT_MEMORY"),
        ("troubled", "INSUFFICIENT_CPU"),
        ("troubled", "GPU_VENDOR_ABSENT"),
        ("troubled", "HOST_PORT_TAKEN"),
        ("troubled", "DEPENDENCY_MISSING"),
    ]
    # The diff is still complete, for `update_services --plan`.
    assert [a.name for a in result.actions] == ["fine", "troubled"]
    assert [r.name for r in result.start_order] == ["fine", "troubled"]


def test_refusals_are_sorted_by_service() -> None:
    result = make_plan([service("b", image="x:1"), service("a", image="y:1")])

    assert [(r.name, r.subject) for r in result.refusals] == [("a", "y:1"), ("b", "x:1")]


def test_every_refusal_and_message_is_complete() -> None:
    result = make_plan(
        [
            service("gpu", gpus=1),
            service("img", image="missing:1"),
            service("mem", memory=10**15),
            service("dup", ports=[1]),
            service("dup2", ports=[1]),
        ]
    )

    assert [r.name for r in result.refusals] == ["dup2", "gpu", "img", "mem"]
    for refusal in result.refusals:
        assert refusal.realm and refusal.name and refusal.message and refusal.remedy
        assert refusal.reason != plan_pb2.REFUSAL_REASON_UNSPECIFIED


def test_the_plan_carries_the_host_it_was_made_against() -> None:
    profile = host("nvidia_h100_x1.json")

    result = make_plan([], on=profile)

    assert result.admitted and not result.actions
    assert result.hostname == "test-nvidia_h100_x1"
    assert result.profile_collected_at == profile.collected_at
    assert [g.uuid for g in result.budget.gpus] == [devices(profile)[0].uuid]


def test_planning_changes_none_of_its_inputs_and_survives_the_wire() -> None:
    profile = host("nvidia_h100_x8.json")
    desired = [service("a", gpus=2, vram=30 * GB), service("b", gpus=1)]
    now = [running(service("c", gpus=1, vram=5 * GB), devices(profile)[0].uuid)]
    before = (
        [d.SerializeToString(deterministic=True) for d in desired],
        profile.SerializeToString(deterministic=True),
    )

    result = plan(desired, now, profile, FakeHostFacts(), NoFootprints())

    assert before == (
        [d.SerializeToString(deterministic=True) for d in desired],
        profile.SerializeToString(deterministic=True),
    )
    assert plan_pb2.Plan.FromString(result.SerializeToString()) == result


def test_actions_carry_spec_fingerprints_and_figures() -> None:
    spec = service("a", memory=2 * GIB, cpus=1.5)
    old = service("a", memory=GIB)

    result = make_plan([spec], [RunningService("default", "a", old, fingerprint(old))])

    restart = action(result, "a")
    assert restart.spec == spec
    assert restart.fingerprint == fingerprint(spec)
    assert restart.running_fingerprint == fingerprint(old)
    assert restart.resources.cpus == 1.5
    assert restart.resources.memory.accounted_bytes == 2 * GIB
    assert not restart.resources.HasField("vram_per_gpu")
    assert not restart.persistent


def test_the_hardest_gpu_request_is_placed_first_whatever_the_names() -> None:
    # On two RTX 4090s (23.5 and 4.8 GiB free), the small service must not take the big
    # GPU that only the large one fits on, although its name sorts first.
    rtx = host("nvidia_rtx4090_x2.json")

    result = make_plan(
        [service("aaa-small", gpus=1, vram=4 * GB), service("zzz-large", gpus=1, vram=20 * GB)],
        on=rtx,
    )

    assert result.admitted, result.refusals
    gpu0, gpu1 = devices(rtx)
    assert [d.uuid for d in action(result, "zzz-large").gpus.devices] == [gpu0.uuid]
    assert [d.uuid for d in action(result, "aaa-small").gpus.devices] == [gpu1.uuid]


def test_a_pinned_request_has_no_choice_so_it_is_placed_before_any_other() -> None:
    rtx = host("nvidia_rtx4090_x2.json")
    gpu0 = devices(rtx)[0]

    result = make_plan(
        [service("aaa-shared", gpus=1, vram=20 * GB), service("zzz-pinned", device_ids=["0"])],
        on=rtx,
    )

    assert [d.uuid for d in action(result, "zzz-pinned").gpus.devices] == [gpu0.uuid]
    assert reasons(result) == [("aaa-shared", "INSUFFICIENT_VRAM")]
