"""GPU admission against recorded hosts: VRAM arithmetic, whole vs shared, ids, vendors."""

from __future__ import annotations

import pytest
from ozwald.agent.v1 import plan_pb2

from ozwald_agent.admission import Footprint
from tests.unit.admission.builders import (
    AMD,
    GB,
    GIB,
    NVIDIA,
    FakeFootprints,
    action,
    devices,
    host,
    make_plan,
    reasons,
    running,
    service,
    uuids,
)

H100 = "nvidia_h100_x1.json"
H100_X8 = "nvidia_h100_x8.json"
RTX4090_X2 = "nvidia_rtx4090_x2.json"
MIXED = "mixed_nvidia_amd.json"


def test_three_services_of_40_gb_do_not_fit_one_h100_and_the_refusal_shows_the_arithmetic() -> None:
    h100 = host(H100)
    gpu = devices(h100)[0]
    desired = [service(n, gpus=1, vram=40 * GB) for n in ("a", "b", "c")]

    result = make_plan(desired, on=h100)

    assert not result.admitted
    assert reasons(result) == [("c", "INSUFFICIENT_VRAM")]
    refusal = result.refusals[0]
    free = gpu.memory_total_bytes - gpu.memory_used_bytes - 2 * 40 * GB
    assert refusal.quantity == plan_pb2.Quantity(
        needed=40 * GB,
        available=free,
        capacity=gpu.memory_total_bytes,
        unit=plan_pb2.RESOURCE_UNIT_BYTES,
    )
    assert refusal.message == (
        "needs 37.3 GiB VRAM (declared) on each of 1 NVIDIA GPU; the roomiest, "
        "NVIDIA GPU 0 (NVIDIA H100 80GB HBM3), has 4.7 GiB free of 79.6 GiB "
        "(0.5 GiB used outside Ozwald; 74.5 GiB reserved by 2 other services: "
        "default:a, default:b)"
    )
    assert "vram_per_gpu" in refusal.remedy
    assert [(r.realm, r.name) for r in refusal.involved] == [("default", "a"), ("default", "b")]
    # The plan still shows what the two that fit would get.
    assert uuids(result, "a") == uuids(result, "b") == [gpu.uuid]
    assert not action(result, "c").HasField("gpus")


def test_two_services_of_40_gb_share_one_h100() -> None:
    h100 = host(H100)
    gpu = devices(h100)[0]

    result = make_plan([service(n, gpus=1, vram=40 * GB) for n in ("a", "b")], on=h100)

    assert result.admitted, result.refusals
    assert uuids(result, "a") == uuids(result, "b") == [gpu.uuid]
    assert not action(result, "a").gpus.exclusive
    assert action(result, "a").gpus.vendor == NVIDIA
    assert action(result, "a").gpus.devices[0].reserved_bytes == 40 * GB
    (ledger,) = result.budget.gpus
    assert ledger.unmanaged_bytes == gpu.memory_used_bytes
    assert ledger.reserved_bytes == 80 * GB
    assert ledger.free_bytes == gpu.memory_total_bytes - gpu.memory_used_bytes - 80 * GB
    assert [h.name for h in ledger.holders] == ["a", "b"]


def test_a_whole_gpu_request_cannot_take_a_gpu_another_service_shares() -> None:
    h100 = host(H100)
    small = service("small", gpus=1, vram=10 * GB)
    now = [running(small, devices(h100)[0].uuid)]

    result = make_plan([small, service("whole", gpus=1)], now, on=h100)

    assert reasons(result) == [("whole", "GPU_IN_USE")]
    assert result.refusals[0].message == (
        "needs 1 whole NVIDIA GPU; only 0 of 1 NVIDIA GPUs are free of other services: "
        "GPU 0 is held by default:small"
    )
    assert [r.name for r in result.refusals[0].involved] == ["small"]


def test_a_shared_request_cannot_enter_a_gpu_held_whole() -> None:
    h100 = host(H100)
    whole = service("whole", gpus=1)
    now = [running(whole, devices(h100)[0].uuid)]

    result = make_plan([whole, service("small", gpus=1, vram=1 * GB)], now, on=h100)

    assert reasons(result) == [("small", "GPU_IN_USE")]
    assert "held whole" in result.refusals[0].message
    assert action(result, "whole").gpus.exclusive
    (ledger,) = result.budget.gpus
    assert ledger.exclusive and ledger.free_bytes == 0


def test_whole_gpus_go_to_the_emptiest_device_and_shared_ones_to_the_tightest_fit() -> None:
    # GPU 1 of this workstation has 19 GiB held by a process Ozwald does not run.
    rtx = host(RTX4090_X2)
    gpu0, gpu1 = devices(rtx)

    result = make_plan([service("whole", gpus=1), service("small", gpus=1, vram=4 * GB)], on=rtx)

    assert result.admitted, result.refusals
    assert uuids(result, "whole") == [gpu0.uuid]
    assert uuids(result, "small") == [gpu1.uuid]
    assert result.budget.gpus[1].unmanaged_bytes == gpu1.memory_used_bytes


def test_shared_requests_pick_the_smallest_sufficient_free_vram_then_the_lowest_index() -> None:
    hgx = host(H100_X8)
    by_index = {d.index: d for d in devices(hgx)}

    result = make_plan(
        [service("ten", gpus=1, vram=10 * GB), service("twenty", gpus=2, vram=20 * GB)], on=hgx
    )

    assert result.admitted, result.refusals
    # GPU 3 has 11.2 GiB free (a foreign process holds 68 GiB): the tightest fit for 10 GB.
    assert uuids(result, "ten") == [by_index[3].uuid]
    assert uuids(result, "twenty") == [by_index[0].uuid, by_index[1].uuid]


def test_a_gpu_id_that_does_not_exist_is_refused_with_the_ids_that_do() -> None:
    hgx = host(H100_X8)

    result = make_plan(
        [service("pinned", device_ids=["GPU-00000000-dead-beef-0000-000000000000", "8"])],
        on=hgx,
    )

    assert reasons(result) == [("pinned", "GPU_ID_NOT_FOUND"), ("pinned", "GPU_ID_NOT_FOUND")]
    first, second = result.refusals
    assert first.subject == "GPU-00000000-dead-beef-0000-000000000000"
    assert second.message == "device id '8' matches no NVIDIA or AMD GPU on this host"
    for device in devices(hgx):
        assert f"NVIDIA {device.index} = {device.uuid}" in first.remedy


def test_gpu_ids_match_by_uuid_in_any_case_or_by_index_in_the_order_given() -> None:
    hgx = host(H100_X8)
    by_index = {d.index: d for d in devices(hgx)}

    result = make_plan(
        [service("pinned", vram=5 * GB, device_ids=["7", by_index[2].uuid.upper()])], on=hgx
    )

    assert result.admitted, result.refusals
    assert uuids(result, "pinned") == [by_index[7].uuid, by_index[2].uuid]


def test_a_pinned_gpu_of_the_wrong_vendor_is_named() -> None:
    mixed = host(MIXED)
    amd = devices(mixed, AMD)[0]

    result = make_plan([service("p", vendor=NVIDIA, device_ids=[amd.uuid])], on=mixed)

    assert reasons(result) == [("p", "GPU_ID_NOT_FOUND")]
    assert "it is AMD GPU 0 (AMD Radeon PRO W7900), but the service asks for NVIDIA GPUs" in (
        result.refusals[0].message
    )


def test_an_index_that_names_gpus_of_two_vendors_is_ambiguous_unless_the_vendor_is_set() -> None:
    mixed = host(MIXED)

    ambiguous = make_plan([service("p", device_ids=["0"])], on=mixed)
    amd_only = make_plan([service("p", vendor=AMD, device_ids=["0"])], on=mixed)

    assert reasons(ambiguous) == [("p", "GPU_ID_AMBIGUOUS")]
    assert devices(mixed, AMD)[0].uuid in ambiguous.refusals[0].remedy
    assert amd_only.admitted
    assert uuids(amd_only, "p") == [devices(mixed, AMD)[0].uuid]
    assert action(amd_only, "p").gpus.vendor == AMD


def test_mig_enabled_gpus_are_never_assigned() -> None:
    hgx = host(H100_X8)
    mig = next(d for d in devices(hgx) if d.index == 5)

    pinned = make_plan([service("p", device_ids=["5"])], on=hgx)
    all_of_them = make_plan([service("big", gpus=8)], on=hgx)
    seven = make_plan([service("big", gpus=7)], on=hgx)

    assert reasons(pinned) == [("p", "GPU_IN_MIG_MODE")]
    assert "nvidia-smi -i 5 -mig 0" in pinned.refusals[0].remedy
    assert reasons(all_of_them) == [("big", "NOT_ENOUGH_GPUS")]
    assert all_of_them.refusals[0].message == (
        "needs 8 whole NVIDIA GPUs; the host has 7 usable NVIDIA GPUs "
        "(1 more with MIG enabled, which Ozwald does not assign)"
    )
    assert all_of_them.refusals[0].quantity.available == 7
    assert seven.admitted
    assert mig.uuid not in uuids(seven, "big")
    # The busy GPU 3 comes last among whole GPUs.
    assert uuids(seven, "big")[-1] == next(d.uuid for d in devices(hgx) if d.index == 3)
    ledger = {g.index: g for g in seven.budget.gpus}
    assert not ledger[5].assignable and "MIG" in ledger[5].note


def test_a_gpu_service_on_a_cpu_only_host_is_refused_with_the_absence_reason() -> None:
    cpu_only = host("cpu_only.json")

    nvidia = make_plan([service("llm", gpus=1, vendor=NVIDIA)], on=cpu_only)
    any_vendor = make_plan([service("llm", gpus=1, vram=8 * GB)], on=cpu_only)

    assert reasons(nvidia) == [("llm", "GPU_VENDOR_ABSENT")]
    message = nvidia.refusals[0].message
    assert message.startswith("needs 1 NVIDIA GPU; NVIDIA GPUs are absent on this host (no driver)")
    assert "NVML cannot start" in message
    assert "driver" in nvidia.refusals[0].remedy and "[cpu]" in nvidia.refusals[0].remedy
    assert nvidia.refusals[0].quantity.needed == 1
    assert reasons(any_vendor) == [("llm", "GPU_VENDOR_ABSENT")]
    assert "NVIDIA GPUs are absent on this host (no driver)" in any_vendor.refusals[0].message
    assert "AMD GPUs are absent on this host (no devices)" in any_vendor.refusals[0].message
    assert not any_vendor.budget.gpus


@pytest.mark.parametrize(
    ("fixture", "vendor", "remedy_words"),
    [
        ("nvidia_permission_denied.json", NVIDIA, "permissions"),
        ("nvidia_nvml_failing.json", NVIDIA, "mismatch"),
        ("amd_mi300x_no_driver.json", AMD, "driver"),
    ],
)
def test_each_absence_reason_has_its_own_remedy(
    fixture: str, vendor: int, remedy_words: str
) -> None:
    result = make_plan([service("llm", gpus=1, vendor=vendor)], on=host(fixture))

    assert reasons(result) == [("llm", "GPU_VENDOR_ABSENT")]
    assert remedy_words in result.refusals[0].remedy


def test_a_listed_gpu_of_an_absent_vendor_is_refused_by_id_with_the_reason() -> None:
    # The RX 7900 XTX is in sysfs, but without /dev/kfd it cannot run ROCm work.
    no_kfd = host("amd_rx7900xtx_no_kfd.json", cores=8)

    result = make_plan([service("p", vendor=AMD, device_ids=["pci-0000:2d:00.0"])], on=no_kfd)

    assert reasons(result) == [("p", "GPU_VENDOR_ABSENT")]
    assert "/dev/kfd" in result.refusals[0].message


def test_any_vendor_prefers_nvidia_and_falls_back_to_amd_when_nvidia_cannot_fit() -> None:
    mixed = host(MIXED)
    rtx, w7900 = devices(mixed, NVIDIA)[0], devices(mixed, AMD)[0]

    fits_nvidia = make_plan([service("s", gpus=1, vram=20 * GB)], on=mixed)
    needs_amd = make_plan([service("s", gpus=1, vram=30 * GB)], on=mixed)
    fits_none = make_plan([service("s", gpus=1, vram=60 * GB)], on=mixed)

    assert uuids(fits_nvidia, "s") == [rtx.uuid]
    assert uuids(needs_amd, "s") == [w7900.uuid]
    assert action(needs_amd, "s").gpus.vendor == AMD
    assert reasons(fits_none) == [("s", "INSUFFICIENT_VRAM")]
    message = fits_none.refusals[0].message
    assert "1 NVIDIA GPU" in message and "1 AMD GPU" in message
    assert fits_none.refusals[0].quantity.available == rtx.memory_free_bytes


def test_a_multi_gpu_shortfall_names_the_gpu_that_would_have_had_to_fit() -> None:
    hgx = host(H100_X8)

    result = make_plan([service("wide", gpus=7, vram=20 * GB)], on=hgx)

    assert reasons(result) == [("wide", "INSUFFICIENT_VRAM")]
    # Six GPUs have 79.1 GiB free; GPU 3 (11.2 GiB) would have been the 7th.
    assert "6 of them have that much free, and the 7th roomiest, NVIDIA GPU 3" in (
        result.refusals[0].message
    )
    gpu3 = next(d for d in devices(hgx) if d.index == 3)
    assert result.refusals[0].quantity.available == gpu3.memory_free_bytes


def test_a_kept_service_keeps_its_gpu_reserved_even_before_it_loaded_its_model() -> None:
    # The profile shows the H100 nearly empty: the running service has not loaded yet.
    h100 = host(H100)
    gpu = devices(h100)[0]
    loading = service("loading", gpus=1, vram=40 * GB)
    now = [running(loading, gpu.uuid)]

    result = make_plan([loading, service("newcomer", gpus=1, vram=50 * GB)], now, on=h100)

    assert reasons(result) == [("newcomer", "INSUFFICIENT_VRAM")]
    assert action(result, "loading").kind == plan_pb2.ACTION_KIND_KEEP
    assert uuids(result, "loading") == [gpu.uuid]


def test_vram_of_a_stopping_service_is_free_for_the_plan() -> None:
    h100 = host(H100)
    gpu = h100.gpu_vendors[0].devices[0]
    gpu.memory_used_bytes += 70 * GB  # what the old service really holds now
    old = service("old", gpus=1, vram=70 * GB)

    result = make_plan([service("new", gpus=1, vram=70 * GB)], [running(old, gpu.uuid)], on=h100)

    assert result.admitted, result.refusals
    assert action(result, "old").kind == plan_pb2.ACTION_KIND_STOP
    assert uuids(result, "old") == uuids(result, "new") == [gpu.uuid]
    assert result.budget.gpus[0].unmanaged_bytes == gpu.memory_used_bytes - 70 * GB


def test_a_restarted_service_gives_its_own_vram_back_before_it_is_readmitted() -> None:
    h100 = host(H100)
    gpu = devices(h100)[0]
    old = service("llm", profile="short", gpus=1, vram=40 * GB)
    new = service("llm", profile="long", gpus=1, vram=70 * GB)

    result = make_plan([new], [running(old, gpu.uuid)], on=h100)

    assert result.admitted, result.refusals
    assert action(result, "llm").kind == plan_pb2.ACTION_KIND_RESTART
    assert action(result, "llm").gpus.devices[0].reserved_bytes == 70 * GB


def test_a_kept_service_on_a_gpu_the_host_no_longer_reports_keeps_its_assignment() -> None:
    lost = host("nvidia_a100_x2_gpu_lost.json")
    kept = service("kept", gpus=1, vram=10 * GB)

    result = make_plan([kept], [running(kept, "GPU-gone")], on=lost)

    assert result.admitted
    (device,) = action(result, "kept").gpus.devices
    assert (device.uuid, device.reported) == ("GPU-gone", False)


def test_a_footprint_replaces_declared_vram_and_says_so() -> None:
    h100 = host(H100)
    book = FakeFootprints(
        {
            ("default", n, "nvidia", "fast"): Footprint(peak_vram_bytes_per_gpu=25 * GB)
            for n in ("a", "b", "c")
        }
    )
    desired = [
        service(n, variety="nvidia", profile="fast", gpus=1, vram=40 * GB) for n in ("a", "b", "c")
    ]

    measured = make_plan(desired, on=h100, footprints=book)

    assert measured.admitted, measured.refusals
    figure = action(measured, "a").resources.vram_per_gpu
    assert figure.source == plan_pb2.FIGURE_SOURCE_FOOTPRINT
    assert (figure.accounted_bytes, figure.declared_bytes) == (25 * GB, 40 * GB)
    assert figure.HasField("footprint_bytes") and figure.footprint_bytes == 25 * GB
    assert action(measured, "a").gpus.devices[0].reserved_bytes == 25 * GB


def test_a_footprint_larger_than_declared_is_what_a_refusal_counts() -> None:
    h100 = host(H100)
    book = FakeFootprints({("default", "big", "", ""): Footprint(peak_vram_bytes_per_gpu=90 * GIB)})

    result = make_plan([service("big", gpus=1, vram=30 * GB)], on=h100, footprints=book)

    assert reasons(result) == [("big", "INSUFFICIENT_VRAM")]
    assert "needs 90.0 GiB VRAM (measured footprint; declared 27.9 GiB)" in (
        result.refusals[0].message
    )


def test_a_whole_gpu_footprint_must_fit_the_gpu() -> None:
    rtx = host(RTX4090_X2)
    book = FakeFootprints({("default", "w", "", ""): Footprint(peak_vram_bytes_per_gpu=22 * GIB)})

    two = make_plan([service("w", gpus=2)], on=rtx, footprints=book)
    pinned = make_plan([service("w", device_ids=["1"])], on=rtx, footprints=book)

    # GPU 1 has 4.8 GiB usable beside a foreign process: only GPU 0 can hold 22 GiB.
    assert reasons(two) == [("w", "INSUFFICIENT_VRAM")]
    assert reasons(pinned) == [("w", "INSUFFICIENT_VRAM")]
    assert "measured footprint" in pinned.refusals[0].message


def test_whole_gpus_shared_by_nobody_are_never_double_booked() -> None:
    rtx = host(RTX4090_X2)

    result = make_plan([service(n, gpus=1) for n in ("a", "b", "c")], on=rtx)

    assert reasons(result) == [("c", "GPU_IN_USE")]
    assert sorted(uuids(result, "a") + uuids(result, "b")) == sorted(d.uuid for d in devices(rtx))
    assert all(g.exclusive and len(g.holders) == 1 for g in result.budget.gpus)


def test_pinned_gpus_are_checked_against_what_others_hold() -> None:
    h100 = host(H100)
    gpu = devices(h100)[0]
    sharer = service("sharer", gpus=1, vram=60 * GB)
    now = [running(sharer, gpu.uuid)]

    whole = make_plan([sharer, service("p", device_ids=["0"])], now, on=h100)
    shared = make_plan([sharer, service("p", device_ids=["0"], vram=30 * GB)], now, on=h100)

    assert reasons(whole) == [("p", "GPU_IN_USE")]
    assert "default:sharer holds it" in whole.refusals[0].message
    assert reasons(shared) == [("p", "INSUFFICIENT_VRAM")]
    assert shared.refusals[0].subject == "0"
