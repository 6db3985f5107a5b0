"""A plan with GPUs and footprints as text: every figure with where it came from."""

from __future__ import annotations

from ozwald.agent.v1 import plan_pb2 as P
from ozwald.common.v1 import gpu_pb2

from ozwald_sdk.cli.render_plan import render_plan

GIB = 1024**3
H100 = "NVIDIA H100 80GB HBM3"


def _gpu_plan() -> P.Plan:
    embed = P.PlannedAction(
        kind=P.ACTION_KIND_RESTART,
        realm="default",
        name="embed",
        reason="effective spec changed",
        changed_fields=["environment", "resources"],
        fingerprint="b" * 64,
        running_fingerprint="a" * 64,
        gpus=P.GpuAssignment(
            vendor=gpu_pb2.GPU_VENDOR_NVIDIA,
            exclusive=False,
            devices=[
                P.AssignedGpu(
                    uuid="GPU-00000002-1111",
                    index=2,
                    name=H100,
                    reserved_bytes=40 * GIB,
                    reported=True,
                )
            ],
        ),
        resources=P.AccountedResources(
            memory=P.ByteFigure(
                accounted_bytes=6 * GIB,
                source=P.FIGURE_SOURCE_FOOTPRINT,
                declared_bytes=8 * GIB,
                footprint_bytes=6 * GIB,
            ),
            vram_per_gpu=P.ByteFigure(
                accounted_bytes=40 * GIB, source=P.FIGURE_SOURCE_DECLARED, declared_bytes=40 * GIB
            ),
            cpus=4,
        ),
    )
    trainer = P.PlannedAction(
        kind=P.ACTION_KIND_KEEP,
        realm="lab",
        name="trainer",
        reason="unchanged",
        gpus=P.GpuAssignment(
            vendor=gpu_pb2.GPU_VENDOR_NVIDIA,
            exclusive=True,
            devices=[P.AssignedGpu(uuid="GPU-gone", reserved_bytes=80 * GIB, reported=False)],
        ),
        resources=P.AccountedResources(
            memory=P.ByteFigure(source=P.FIGURE_SOURCE_NONE),
        ),
    )
    return P.Plan(
        admitted=True,
        actions=[embed, trainer],
        stop_order=[P.ServiceRef(realm="default", name="embed")],
        start_order=[P.ServiceRef(realm="default", name="embed")],
        hostname="gpu-box",
        budget=P.HostBudget(
            memory=P.MemoryBudget(
                total_bytes=2048 * GIB,
                available_bytes=1900 * GIB,
                released_bytes=8 * GIB,
                claimed_bytes=6 * GIB,
                left_bytes=1902 * GIB,
            ),
            cpu=P.CpuBudget(usable_cores=384, claimed_cores=4),
            gpus=[
                P.GpuBudget(
                    vendor=gpu_pb2.GPU_VENDOR_NVIDIA,
                    index=2,
                    uuid="GPU-00000002-1111",
                    name=H100,
                    total_bytes=80 * GIB,
                    unmanaged_bytes=1 * GIB,
                    reserved_bytes=40 * GIB,
                    free_bytes=39 * GIB,
                    holders=[P.ServiceRef(realm="default", name="embed")],
                    assignable=True,
                ),
                P.GpuBudget(
                    vendor=gpu_pb2.GPU_VENDOR_NVIDIA,
                    index=7,
                    name=H100,
                    total_bytes=80 * GIB,
                    assignable=False,
                    note="MIG is enabled",
                ),
            ],
        ),
    )


def test_gpu_plan_shows_assignments_figures_sources_and_budget() -> None:
    text = render_plan(_gpu_plan())
    flat = " ".join(text.split())

    assert "Admitted: 1 service to change." in text
    assert "RESTART  default:embed  effective spec changed" in text
    assert "changed: environment, resources" in text
    assert (
        "memory 6.0 GiB (footprint; declared 8.0 GiB); VRAM per GPU 40.0 GiB (declared); "
        "cpus 4 (declared)"
    ) in flat
    assert f"GPU 2 {H100} (GPU-00000002-1111): 40.0 GiB reserved, shared" in flat
    assert "KEEP     lab:trainer    unchanged" in text
    assert "memory not declared, no footprint (counted as 0)" in flat
    assert "NVIDIA GPU GPU-gone (no longer reported by the host): 80.0 GiB reserved, whole" in flat
    assert (
        f"NVIDIA GPU 2 {H100}: 40.0 GiB reserved by default:embed; 39.0 GiB free of 80.0 GiB "
        "(1.0 GiB used outside Ozwald)"
    ) in flat
    assert f"NVIDIA GPU 7 {H100}: not assignable (MIG is enabled)" in flat
    assert "4 of 384 usable cores claimed" in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_a_restart_whose_reason_names_the_fields_does_not_repeat_them() -> None:
    plan = _gpu_plan()
    plan.actions[0].reason = "effective spec changed: environment, resources"
    assert "changed:" not in render_plan(plan).replace("spec changed:", "")
