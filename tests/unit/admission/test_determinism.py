"""Property-style checks over seeded random workloads on every recorded GPU host.

No hypothesis here: each seed is one workload, and the same seed is the same test on every
run, so a failure reproduces by its test id.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest
from ozwald.agent.v1 import plan_pb2
from ozwald.common.v1 import gpu_pb2, service_spec_pb2
from ozwald.common.v1.host_profile_pb2 import HostProfile

from ozwald_agent.admission import RunningService
from tests.unit.admission.builders import (
    AMD,
    ANY,
    GB,
    GIB,
    NVIDIA,
    FakeHostFacts,
    host,
    make_plan,
    running,
    service,
)

HOSTS = [
    "nvidia_h100_x8.json",
    "nvidia_h100_x1.json",
    "nvidia_rtx4090_x2.json",
    "mixed_nvidia_amd.json",
    "amd_mi210_x2_sysfs.json",
    "amd_mi300x_x1.json",
]
SEEDS = range(8)
CASES = [(fixture, seed) for fixture in HOSTS for seed in SEEDS]


def _workload(seed: int) -> list[service_spec_pb2.ServiceSpec]:
    rng = random.Random(seed)
    specs = []
    for i in range(rng.randint(2, 12)):
        shape = rng.choice(["shared", "shared", "whole", "none"])
        gpus = 0 if shape == "none" else rng.choice([1, 1, 1, 2])
        specs.append(
            service(
                f"svc{i:02d}",
                gpus=gpus,
                vram=rng.choice([2, 5, 10, 20, 24, 40, 70]) * GB if shape == "shared" else 0,
                vendor=rng.choice([ANY, ANY, NVIDIA, AMD]),
                memory=rng.randint(1, 48) * GIB,
                cpus=rng.choice([0.0, 0.5, 1.0, 2.0, 4.0]),
                ports=[8000 + rng.randint(0, 20)] if rng.random() < 0.5 else [],
            )
        )
    return specs


def _host(fixture: str) -> object:
    return host(fixture, cores=32, memory_gib=256, available_gib=200)


def _after(result: plan_pb2.Plan) -> list[RunningService]:
    """What runs once `result` is applied."""
    return [
        running(a.spec, *(d.uuid for d in a.gpus.devices), persistent=a.persistent)
        for a in result.actions
        if a.kind != plan_pb2.ACTION_KIND_STOP
    ]


@pytest.mark.parametrize(("fixture", "seed"), CASES)
def test_the_plan_does_not_depend_on_the_order_of_its_inputs(fixture: str, seed: int) -> None:
    profile = host(fixture)
    desired = _workload(seed)
    first = make_plan(desired, on=profile)

    for shuffle in range(3):
        again = list(desired)
        random.Random(shuffle).shuffle(again)
        assert make_plan(again, on=profile) == first


@pytest.mark.parametrize(("fixture", "seed"), CASES)
def test_no_gpu_is_ever_double_booked(fixture: str, seed: int) -> None:
    profile = host(fixture)
    result = make_plan(_workload(seed), on=profile)
    mig = {
        d.uuid
        for r in profile.gpu_vendors
        for d in r.devices
        if d.mig_mode == gpu_pb2.MIG_MODE_ENABLED
    }

    reserved: Counter[str] = Counter()
    for a in result.actions:
        if not a.HasField("gpus"):
            continue
        wanted = a.spec.resources.gpus
        devices = [d.uuid for d in a.gpus.devices]
        assert len(devices) == len(set(devices)) == wanted.count
        assert wanted.vendor in (ANY, a.gpus.vendor)
        assert a.gpus.exclusive == (wanted.vram_per_gpu_bytes == 0)
        assert not mig & set(devices)
        for d in a.gpus.devices:
            reserved[d.uuid] += d.reserved_bytes
    for gpu in result.budget.gpus:
        assert gpu.reserved_bytes == reserved[gpu.uuid]
        assert gpu.unmanaged_bytes + gpu.reserved_bytes + gpu.free_bytes <= gpu.total_bytes
        if gpu.exclusive:
            assert len(gpu.holders) == 1 and gpu.free_bytes == 0


@pytest.mark.parametrize(("fixture", "seed"), CASES)
def test_memory_and_cpu_claims_stay_within_the_host(fixture: str, seed: int) -> None:
    result = make_plan(_workload(seed), on=host(fixture, cores=8, available_gib=100))

    memory, cpu = result.budget.memory, result.budget.cpu
    assert memory.claimed_bytes <= memory.available_bytes + memory.released_bytes
    assert (
        memory.left_bytes == memory.available_bytes + memory.released_bytes - memory.claimed_bytes
    )
    assert cpu.claimed_cores <= cpu.usable_cores
    assert result.admitted == (not result.refusals)
    refused = {r.name for r in result.refusals}
    assert refused <= {a.name for a in result.actions}


@pytest.mark.parametrize(("fixture", "seed"), CASES)
def test_replanning_what_was_admitted_keeps_everything_where_it_is(fixture: str, seed: int) -> None:
    profile = host(fixture)
    desired = _workload(seed)
    first = make_plan(desired, on=profile, facts=FakeHostFacts())
    if not first.admitted:
        # Admit what fitted, so that every seed checks something.
        refused = {r.name for r in first.refusals}
        desired = [s for s in desired if s.name not in refused]
        first = make_plan(desired, on=profile)
    assert first.admitted, first.refusals

    # The admitted services run and have loaded their models; their containers listen on
    # their portals, which the plan must not ask the host about.
    loaded = _loaded(profile, first)
    listening = {(p.host_ip, p.host_port) for s in desired for p in s.portals}
    second = make_plan(desired, _after(first), on=loaded, facts=FakeHostFacts(listening=listening))

    assert second.admitted, second.refusals
    assert {a.kind for a in second.actions} <= {plan_pb2.ACTION_KIND_KEEP}
    assert not second.start_order and not second.stop_order
    for before, after in zip(first.actions, second.actions, strict=True):
        assert [d.uuid for d in after.gpus.devices] == [d.uuid for d in before.gpus.devices]
    for before_gpu, after_gpu in zip(first.budget.gpus, second.budget.gpus, strict=True):
        assert after_gpu.holders == before_gpu.holders
        assert after_gpu.exclusive == before_gpu.exclusive
        if not after_gpu.exclusive:
            # Whole-GPU holders without a footprint take all of their device's use as
            # theirs (a documented limit); shared devices keep the same ledger.
            assert after_gpu == before_gpu


def _loaded(profile: HostProfile, result: plan_pb2.Plan) -> HostProfile:
    """`profile` once the shared services of `result` hold their reserved VRAM."""
    loaded = HostProfile()
    loaded.CopyFrom(profile)
    held: Counter[str] = Counter()
    for a in result.actions:
        if not a.gpus.exclusive:
            for d in a.gpus.devices:
                held[d.uuid] += d.reserved_bytes
    for report in loaded.gpu_vendors:
        for device in report.devices:
            device.memory_used_bytes += held[device.uuid]
            device.memory_free_bytes -= min(device.memory_free_bytes, held[device.uuid])
    return loaded
