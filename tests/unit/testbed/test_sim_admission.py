from __future__ import annotations

from ozwald.agent.v1 import plan_pb2
from ozwald.common.v1 import gpu_pb2, service_spec_pb2

from ozwald_sdk.fingerprint import fingerprint
from ozwald_testbed.sim_admission import Running, admit
from ozwald_testbed.simulated_hardware import GIB, SimulatedGpu, SimulatedHardware


def _host(gpus: int = 2, memory_gib: int = 64, cores: int = 8) -> SimulatedHardware:
    return SimulatedHardware(
        description="test host",
        logical_cores=cores,
        memory_total_bytes=memory_gib * GIB,
        gpus=tuple(
            SimulatedGpu(
                vendor=gpu_pb2.GPU_VENDOR_NVIDIA,
                index=i,
                uuid=f"GPU-{i}",
                name="NVIDIA H100 80GB HBM3",
                memory_total_bytes=80 * GIB,
            )
            for i in range(gpus)
        ),
    )


def _spec(
    name: str, memory_gib: int = 1, gpus: int = 0, vram_gib: int = 0, cpus: float = 0
) -> service_spec_pb2.ServiceSpec:
    spec = service_spec_pb2.ServiceSpec(realm="r", name=name, image="img")
    spec.resources.memory_bytes = memory_gib * GIB
    spec.resources.cpus = cpus
    if gpus:
        spec.resources.gpus.count = gpus
        spec.resources.gpus.vendor = gpu_pb2.GPU_VENDOR_NVIDIA
        spec.resources.gpus.vram_per_gpu_bytes = vram_gib * GIB
    return spec


def test_a_set_that_fits_is_admitted_with_start_actions_and_gpus() -> None:
    admission = admit([_spec("a", gpus=1), _spec("b", gpus=1, vram_gib=10)], {}, _host())
    assert admission.plan.admitted
    kinds = {a.name: a.kind for a in admission.plan.actions}
    assert kinds == {"a": plan_pb2.ACTION_KIND_START, "b": plan_pb2.ACTION_KIND_START}
    assert admission.gpus["a"] != admission.gpus["b"]
    assert admission.plan.budget.memory.claimed_bytes == 2 * GIB


def test_memory_refusal_says_how_much_and_refuses_the_whole_set() -> None:
    admission = admit(
        [_spec("a-small", memory_gib=10), _spec("b-big", memory_gib=40)],
        {},
        _host(memory_gib=64),
        occupied_memory_bytes=20 * GIB,
    )
    assert not admission.plan.admitted
    assert admission.gpus == {}
    [refusal] = admission.plan.refusals
    assert refusal.name == "b-big"
    assert refusal.reason == plan_pb2.REFUSAL_REASON_INSUFFICIENT_MEMORY
    assert refusal.quantity.needed == 40 * GIB
    assert refusal.quantity.available == 34 * GIB
    assert "40.0 GiB" in refusal.message and refusal.remedy


def test_running_services_keep_their_gpus_and_claim_first() -> None:
    kept = _spec("kept", gpus=1)
    running = {"kept": Running(fingerprint(kept), ("GPU-1",))}
    admission = admit([kept, _spec("new", gpus=1)], running, _host())
    assert admission.plan.admitted
    assert admission.gpus == {"kept": ("GPU-1",), "new": ("GPU-0",)}
    assert {a.name: a.kind for a in admission.plan.actions}["kept"] == plan_pb2.ACTION_KIND_KEEP


def test_whole_gpus_run_out_and_shared_vram_is_counted() -> None:
    refused = admit([_spec("a", gpus=1), _spec("b", gpus=1), _spec("c", gpus=1)], {}, _host())
    assert [r.reason for r in refused.plan.refusals] == [plan_pb2.REFUSAL_REASON_GPU_IN_USE]
    shared = admit(
        [
            _spec("a", gpus=1, vram_gib=50),
            _spec("b", gpus=1, vram_gib=50),
            _spec("c", gpus=1, vram_gib=50),
        ],
        {},
        _host(),
    )
    assert [r.reason for r in shared.plan.refusals] == [plan_pb2.REFUSAL_REASON_INSUFFICIENT_VRAM]


def test_gpus_of_an_absent_vendor_and_cpu_overcommit_are_refused() -> None:
    cpu_host = _host(gpus=0, cores=2)
    admission = admit([_spec("g", gpus=1), _spec("c", cpus=3)], {}, cpu_host)
    reasons = {r.name: r.reason for r in admission.plan.refusals}
    assert reasons == {
        "g": plan_pb2.REFUSAL_REASON_GPU_VENDOR_ABSENT,
        "c": plan_pb2.REFUSAL_REASON_INSUFFICIENT_CPU,
    }


def test_services_no_longer_desired_are_stopped_and_changed_ones_restarted() -> None:
    old = _spec("x", memory_gib=1)
    running = {
        "x": Running(fingerprint(old), ()),
        "gone": Running("f", ()),
    }
    admission = admit([_spec("x", memory_gib=2)], running, _host())
    kinds = {a.name: a.kind for a in admission.plan.actions}
    assert kinds == {"x": plan_pb2.ACTION_KIND_RESTART, "gone": plan_pb2.ACTION_KIND_STOP}
