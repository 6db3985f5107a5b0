"""Admission for a simulated host: does a complete desired set fit, and which GPUs does each get.

The real agent's admission (ozwald_agent.admission) weighs footprints, ports, images,
vault lockers and volumes too; a simulated host has none of those, so this one checks what
placement is about: main memory, CPU cores, GPU vendor, count and VRAM. Like the agent's it
is atomic (the set is admitted whole or refused), services that keep running keep what they
hold, and every refusal says what, why and what to do, with its arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ozwald.agent.v1 import plan_pb2
from ozwald.common.v1 import gpu_pb2, service_spec_pb2

from ozwald_sdk.fingerprint import fingerprint
from ozwald_testbed.simulated_hardware import GIB, SimulatedGpu, SimulatedHardware


@dataclass(frozen=True)
class Running:
    """What a service that runs now holds."""

    fingerprint: str
    gpu_uuids: tuple[str, ...]


@dataclass
class Admission:
    """The plan, and for an admitted one the GPUs each desired service gets."""

    plan: plan_pb2.Plan
    gpus: dict[str, tuple[str, ...]] = field(default_factory=dict)


def admit(
    desired: Sequence[service_spec_pb2.ServiceSpec],
    running: Mapping[str, Running],
    hardware: SimulatedHardware,
    *,
    occupied_memory_bytes: int = 0,
    hostname: str = "",
) -> Admission:
    """Plans `desired` (the complete set, keyed by service name) against what runs now.

    `occupied_memory_bytes` is memory taken by something Ozwald does not run.
    """
    plan = plan_pb2.Plan(hostname=hostname)
    ledger = _Ledger(hardware, occupied_memory_bytes)
    names = {s.name for s in desired}
    by_name: dict[str, service_spec_pb2.ServiceSpec] = {}
    for spec in desired:
        if spec.name in by_name:
            plan.refusals.append(
                _refusal(
                    spec,
                    plan_pb2.REFUSAL_REASON_DUPLICATE_SERVICE,
                    f"the desired set names {spec.realm}/{spec.name} twice",
                    "send each service once",
                )
            )
        by_name[spec.name] = spec
    for name in sorted(set(running) - names):
        plan.actions.append(
            plan_pb2.PlannedAction(
                kind=plan_pb2.ACTION_KIND_STOP,
                name=name,
                reason="no longer desired",
                running_fingerprint=running[name].fingerprint,
            )
        )
        plan.stop_order.append(plan_pb2.ServiceRef(name=name))
    # Services that keep running claim first: they already hold their resources.
    kept: list[tuple[service_spec_pb2.ServiceSpec, str]] = []
    started: list[tuple[service_spec_pb2.ServiceSpec, str]] = []
    for name in sorted(by_name):
        spec, print_ = by_name[name], fingerprint(by_name[name])
        current = running.get(name)
        (kept if current is not None and current.fingerprint == print_ else started).append(
            (spec, print_)
        )
    gpus: dict[str, tuple[str, ...]] = {}
    for spec, print_ in kept:
        ledger.claim_memory_and_cpu(spec)
        held = running[spec.name].gpu_uuids
        ledger.hold(spec, held)
        gpus[spec.name] = held
        plan.actions.append(_action(plan_pb2.ACTION_KIND_KEEP, spec, print_, "unchanged", running))
    for spec, print_ in started:
        refusals = ledger.refuse_memory_or_cpu(spec)
        chosen, gpu_refusal = ledger.choose_gpus(spec)
        if gpu_refusal is not None:
            refusals.append(gpu_refusal)
        if refusals:
            plan.refusals.extend(refusals)
            continue
        ledger.claim_memory_and_cpu(spec)
        ledger.hold(spec, chosen)
        gpus[spec.name] = chosen
        restart = spec.name in running
        kind = plan_pb2.ACTION_KIND_RESTART if restart else plan_pb2.ACTION_KIND_START
        reason = "effective spec changed" if restart else "new service"
        plan.actions.append(_action(kind, spec, print_, reason, running))
        if restart:
            plan.stop_order.append(plan_pb2.ServiceRef(realm=spec.realm, name=spec.name))
        plan.start_order.append(plan_pb2.ServiceRef(realm=spec.realm, name=spec.name))
    plan.admitted = not plan.refusals
    plan.budget.CopyFrom(ledger.budget())
    return Admission(plan=plan, gpus=gpus if plan.admitted else {})


class _Ledger:
    """What the host has left as services claim memory, cores and GPUs."""

    def __init__(self, hardware: SimulatedHardware, occupied_memory_bytes: int) -> None:
        self._hardware = hardware
        self._memory_total = hardware.memory_total_bytes
        self._memory_left = max(0, hardware.memory_total_bytes - occupied_memory_bytes)
        self._memory_available = self._memory_left
        self._cores = float(hardware.logical_cores)
        self._cores_claimed = 0.0
        self._gpus = [g for g in hardware.gpus if not g.mig_enabled]
        self._vram_reserved: dict[str, int] = {g.uuid: g.memory_used_bytes for g in self._gpus}
        self._exclusive: set[str] = set()
        self._holders: dict[str, int] = {g.uuid: 0 for g in self._gpus}

    def claim_memory_and_cpu(self, spec: service_spec_pb2.ServiceSpec) -> None:
        self._memory_left -= spec.resources.memory_bytes
        self._cores_claimed += spec.resources.cpus

    def refuse_memory_or_cpu(self, spec: service_spec_pb2.ServiceSpec) -> list[plan_pb2.Refusal]:
        refusals = []
        need = spec.resources.memory_bytes
        if need > self._memory_left:
            refusal = _refusal(
                spec,
                plan_pb2.REFUSAL_REASON_INSUFFICIENT_MEMORY,
                f"needs {need / GIB:.1f} GiB memory (declared); {self._memory_left / GIB:.1f} "
                f"GiB is free for it of {self._memory_total / GIB:.1f} GiB",
                "lower the service's memory, stop services this host runs, or run it on a "
                "host with more memory",
            )
            refusal.quantity.CopyFrom(
                plan_pb2.Quantity(
                    needed=need,
                    available=max(0, self._memory_left),
                    capacity=self._memory_total,
                    unit=plan_pb2.RESOURCE_UNIT_BYTES,
                )
            )
            refusals.append(refusal)
        cpus = spec.resources.cpus
        if cpus and self._cores_claimed + cpus > self._cores:
            refusal = _refusal(
                spec,
                plan_pb2.REFUSAL_REASON_INSUFFICIENT_CPU,
                f"needs {cpus:g} cores (declared); {self._cores - self._cores_claimed:g} of "
                f"{self._cores:g} are not claimed by other services",
                "lower the service's cpus, or run it on a host with more cores",
            )
            refusal.quantity.CopyFrom(
                plan_pb2.Quantity(
                    needed=cpus,
                    available=max(0.0, self._cores - self._cores_claimed),
                    capacity=self._cores,
                    unit=plan_pb2.RESOURCE_UNIT_CPU_CORES,
                )
            )
            refusals.append(refusal)
        return refusals

    def choose_gpus(
        self, spec: service_spec_pb2.ServiceSpec
    ) -> tuple[tuple[str, ...], plan_pb2.Refusal | None]:
        want = spec.resources.gpus
        if not want.count:
            return (), None
        vendor = want.vendor
        usable = [g for g in self._gpus if vendor in (gpu_pb2.GPU_VENDOR_UNSPECIFIED, g.vendor)]
        of_vendor = [
            g for g in self._hardware.gpus if vendor in (gpu_pb2.GPU_VENDOR_UNSPECIFIED, g.vendor)
        ]
        if not of_vendor:
            return (), _refusal(
                spec,
                plan_pb2.REFUSAL_REASON_GPU_VENDOR_ABSENT,
                f"needs {_gpus(want.count, vendor)}; the host has none",
                "run it on a host with such GPUs, or choose another variety",
            )
        if len(usable) < want.count:
            return (), _refusal(
                spec,
                plan_pb2.REFUSAL_REASON_NOT_ENOUGH_GPUS,
                f"needs {_gpus(want.count, vendor)}; the host has {len(usable)} usable",
                "lower the GPU count, or run it on a host with more GPUs",
            )
        if want.vram_per_gpu_bytes:
            fits = [g for g in usable if self._free(g) >= want.vram_per_gpu_bytes]
            # Best fit: the fullest GPUs that still fit, so big ones stay free for big services.
            fits.sort(key=lambda g: (self._free(g), g.index))
            if len(fits) < want.count:
                return (), _refusal(
                    spec,
                    plan_pb2.REFUSAL_REASON_INSUFFICIENT_VRAM,
                    f"needs {want.vram_per_gpu_bytes / GIB:.1f} GiB VRAM on each of "
                    f"{want.count} GPU(s); {len(fits)} have that much free",
                    "lower the VRAM, stop services that hold GPUs, or run it elsewhere",
                )
            return tuple(g.uuid for g in fits[: want.count]), None
        whole = [g for g in usable if self._holders[g.uuid] == 0]
        if len(whole) < want.count:
            return (), _refusal(
                spec,
                plan_pb2.REFUSAL_REASON_GPU_IN_USE,
                f"needs {want.count} whole GPU(s); {len(whole)} are held by no other service",
                "stop services that hold GPUs, declare VRAM to share them, or run it elsewhere",
            )
        return tuple(g.uuid for g in whole[: want.count]), None

    def hold(self, spec: service_spec_pb2.ServiceSpec, uuids: Sequence[str]) -> None:
        per_gpu = spec.resources.gpus.vram_per_gpu_bytes
        for uuid in uuids:
            if uuid not in self._holders:
                continue
            self._holders[uuid] += 1
            if per_gpu:
                self._vram_reserved[uuid] += per_gpu
            else:
                self._exclusive.add(uuid)

    def budget(self) -> plan_pb2.HostBudget:
        claimed = self._memory_available - self._memory_left
        budget = plan_pb2.HostBudget(
            memory=plan_pb2.MemoryBudget(
                total_bytes=self._memory_total,
                available_bytes=self._memory_available,
                claimed_bytes=max(0, claimed),
                left_bytes=max(0, self._memory_left),
            ),
            cpu=plan_pb2.CpuBudget(
                usable_cores=int(self._cores), claimed_cores=self._cores_claimed
            ),
        )
        for gpu in self._gpus:
            budget.gpus.append(
                plan_pb2.GpuBudget(
                    vendor=gpu.vendor,
                    index=gpu.index,
                    uuid=gpu.uuid,
                    name=gpu.name,
                    total_bytes=gpu.memory_total_bytes,
                    unmanaged_bytes=gpu.memory_used_bytes,
                    reserved_bytes=self._vram_reserved[gpu.uuid] - gpu.memory_used_bytes,
                    free_bytes=self._free(gpu),
                    exclusive=gpu.uuid in self._exclusive,
                    assignable=True,
                )
            )
        return budget

    def _free(self, gpu: SimulatedGpu) -> int:
        if gpu.uuid in self._exclusive:
            return 0
        return max(0, gpu.memory_total_bytes - self._vram_reserved[gpu.uuid])


def _action(
    kind: plan_pb2.ActionKind.ValueType,
    spec: service_spec_pb2.ServiceSpec,
    print_: str,
    reason: str,
    running: Mapping[str, Running],
) -> plan_pb2.PlannedAction:
    current = running.get(spec.name)
    action = plan_pb2.PlannedAction(
        kind=kind,
        realm=spec.realm,
        name=spec.name,
        spec=spec,
        reason=reason,
        fingerprint=print_,
        running_fingerprint=current.fingerprint if current else "",
    )
    action.resources.memory.accounted_bytes = spec.resources.memory_bytes
    action.resources.memory.declared_bytes = spec.resources.memory_bytes
    action.resources.memory.source = (
        plan_pb2.FIGURE_SOURCE_DECLARED
        if spec.resources.memory_bytes
        else plan_pb2.FIGURE_SOURCE_NONE
    )
    action.resources.cpus = spec.resources.cpus
    return action


def _refusal(
    spec: service_spec_pb2.ServiceSpec,
    reason: plan_pb2.RefusalReason.ValueType,
    message: str,
    remedy: str,
) -> plan_pb2.Refusal:
    return plan_pb2.Refusal(
        realm=spec.realm, name=spec.name, reason=reason, message=message, remedy=remedy
    )


def _gpus(count: int, vendor: gpu_pb2.GpuVendor.ValueType) -> str:
    """'2 NVIDIA GPUs', '1 GPU'."""
    name = {gpu_pb2.GPU_VENDOR_NVIDIA: "NVIDIA ", gpu_pb2.GPU_VENDOR_AMD: "AMD "}.get(vendor, "")
    return f"{count} {name}GPU{'s' if count != 1 else ''}"
