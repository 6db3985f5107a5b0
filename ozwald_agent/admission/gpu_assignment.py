"""GPU assignment: concrete devices for each service, never double-booked.

The VRAM ledger. Each device of a present vendor has a capacity and reservations:

    capacity  = memory_total - unmanaged
    unmanaged = max(0, memory_used - what Ozwald's running services on it account for)
    free      = capacity - sum of the reservations of the services that will run on it

A service sharing GPUs (it declares VRAM per GPU) reserves its VRAM figure (footprint,
else declared) on each of its GPUs; a service taking GPUs whole reserves a device's
entire capacity and excludes everyone else. Reservations, not the momentary memory_used,
are what admission counts: a service that was admitted but has not loaded its model yet
still holds its share, so two plans in a row cannot both give it away.

`unmanaged` is the VRAM of processes Ozwald does not run, plus the driver's own, as far as
the profile tells: the profile lists what each device uses but not whose processes those
are, so Ozwald's share is taken to be its services' figures (a whole-GPU holder's share
is the whole device unless a footprint says otherwise). Known limits:
- A running Ozwald service that holds less than its figure (still loading, or declared
  generously) makes the foreign use look smaller by the difference, so a GPU can be
  over-admitted by up to that much. One that holds more makes it look larger: the
  excess is treated as foreign, which is safe.
- A device held whole by a running service without a recorded footprint reports no
  unmanaged VRAM at all: everything on it is counted as that service's. With a footprint,
  the service's share is its footprint, like a shared service's.
- Foreign processes that start after the profile was collected are not seen.

Choosing devices. Candidates are the devices of a vendor whose report is `present`, of
the vendor asked for (UNSPECIFIED tries NVIDIA, then AMD, the order varieties are chosen
in; one service never mixes vendors), MIG-enabled ones excluded (Ozwald assigns whole
GPUs, not MIG instances). Shared requests take the devices with the least free VRAM that
is still enough (best fit), whole-GPU requests the devices no other service holds with the
most capacity (a whole GPU should be as empty of foreign processes as possible); ties go
to the lowest index. Pinned requests (device_ids, by UUID or vendor index) get exactly
those devices or a refusal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

from ozwald.agent.v1 import plan_pb2
from ozwald.common.v1 import gpu_pb2, host_profile_pb2, service_spec_pb2

from ozwald_agent.admission.figures import Figure
from ozwald_agent.admission.keys import ServiceKey, labels, ref
from ozwald_agent.admission.refusals import BYTES, GPUS, Reason, quantity, refusal
from ozwald_agent.admission.units import counted, gib

Vendor: TypeAlias = gpu_pb2.GpuVendor.ValueType

NVIDIA = gpu_pb2.GPU_VENDOR_NVIDIA
AMD = gpu_pb2.GPU_VENDOR_AMD
# "Any vendor" tries them in this order: the order varieties are chosen from hardware.
VENDOR_PREFERENCE: tuple[Vendor, ...] = (NVIDIA, AMD)
_VENDOR_NAMES = {NVIDIA: "NVIDIA", AMD: "AMD"}

_ABSENCE_WORDS = {
    gpu_pb2.GPU_ABSENCE_REASON_NO_DEVICES: "no devices",
    gpu_pb2.GPU_ABSENCE_REASON_NO_DRIVER: "no driver",
    gpu_pb2.GPU_ABSENCE_REASON_LIBRARY_MISSING: "library missing",
    gpu_pb2.GPU_ABSENCE_REASON_PERMISSION_DENIED: "permission denied",
    gpu_pb2.GPU_ABSENCE_REASON_LIBRARY_ERROR: "library error",
}
_MIG_NOTE = "MIG is enabled: Ozwald assigns whole GPUs and does not use MIG instances yet"


def vendor_name(vendor: Vendor) -> str:
    return _VENDOR_NAMES.get(vendor, "any-vendor")


@dataclass(frozen=True)
class Holding:
    """GPUs a running service holds now."""

    key: ServiceKey
    uuids: tuple[str, ...]
    whole: bool
    vram_per_gpu: int


@dataclass
class _Device:
    device: gpu_pb2.GpuDevice
    # True when the device's vendor report is `present`: only then may it be assigned.
    vendor_present: bool
    unmanaged: int = 0
    holders: dict[ServiceKey, int] = field(default_factory=dict)
    exclusive: bool = False

    @property
    def vendor(self) -> Vendor:
        return self.device.vendor

    @property
    def total(self) -> int:
        return self.device.memory_total_bytes

    @property
    def capacity(self) -> int:
        return max(0, self.total - self.unmanaged)

    @property
    def holder_keys(self) -> tuple[ServiceKey, ...]:
        """Who holds it, by realm and name (not by the order they were admitted in)."""
        return tuple(sorted(self.holders))

    @property
    def reserved(self) -> int:
        return sum(self.holders.values())

    @property
    def free(self) -> int:
        return 0 if self.exclusive else max(0, self.capacity - self.reserved)

    @property
    def mig(self) -> bool:
        return self.device.mig_mode == gpu_pb2.MIG_MODE_ENABLED

    def describe(self) -> str:
        return f"{vendor_name(self.vendor)} GPU {self.device.index} ({self.device.name})"

    def occupancy(self) -> str:
        """'4.7 GiB free of 79.6 GiB (0.5 GiB used outside Ozwald; 74.5 GiB reserved by ...)'"""
        parts = []
        if self.unmanaged:
            parts.append(f"{gib(self.unmanaged)} used outside Ozwald")
        if self.holders:
            parts.append(
                f"{gib(self.reserved)} reserved by "
                f"{counted(len(self.holders), 'other service')}: {labels(self.holder_keys)}"
            )
        detail = f" ({'; '.join(parts)})" if parts else ""
        return f"{gib(self.free)} free of {gib(self.total)}{detail}"

    def reserve(self, key: ServiceKey, whole: bool, vram: int) -> None:
        if whole:
            self.holders[key] = self.capacity
            self.exclusive = True
        else:
            self.holders[key] = vram

    def assigned(self, key: ServiceKey) -> plan_pb2.AssignedGpu:
        return plan_pb2.AssignedGpu(
            uuid=self.device.uuid,
            index=self.device.index,
            name=self.device.name,
            reserved_bytes=self.holders.get(key, 0),
            reported=True,
        )


@dataclass(frozen=True)
class _Failure:
    reason: Reason
    message: str
    remedy: str
    quantity: plan_pb2.Quantity | None = None
    involved: tuple[ServiceKey, ...] = ()
    subject: str = ""

    def refusal(self, key: ServiceKey) -> plan_pb2.Refusal:
        return refusal(
            key,
            self.reason,
            self.message,
            self.remedy,
            quantity=self.quantity,
            subject=self.subject,
            involved=self.involved,
        )


class GpuLedger:
    def __init__(self, host: host_profile_pb2.HostProfile, running: Sequence[Holding]) -> None:
        self._reports = {report.vendor: report for report in host.gpu_vendors}
        self._devices = sorted(
            (
                _Device(device, vendor_present=report.present)
                for report in host.gpu_vendors
                for device in report.devices
            ),
            key=lambda d: (d.vendor, d.device.index),
        )
        accounted: dict[str, int] = {}
        for holding in running:
            for uuid in holding.uuids:
                device = self._by_uuid(uuid)
                if device is not None:
                    share = holding.vram_per_gpu
                    if holding.whole and not share:
                        # Nothing measured: all a whole-GPU holder's device uses is its own.
                        share = device.total
                    accounted[uuid] = accounted.get(uuid, 0) + share
        for device in self._devices:
            used = device.device.memory_used_bytes
            device.unmanaged = max(0, used - accounted.get(device.device.uuid, 0))

    # Services that stay and services that leave ---------------------------------------

    def keep(self, holding: Holding, vendor: Vendor) -> plan_pb2.GpuAssignment:
        """A kept service keeps its GPUs: they are reserved before anything is chosen."""
        for uuid in holding.uuids:
            device = self._by_uuid(uuid)
            if device is not None and device.vendor_present:
                device.reserve(holding.key, holding.whole, holding.vram_per_gpu)
        return self.describe(holding, vendor)

    def describe(self, holding: Holding, vendor: Vendor) -> plan_pb2.GpuAssignment:
        """The GPUs a running service holds, as an assignment (for KEEP and STOP)."""
        assignment = plan_pb2.GpuAssignment(vendor=vendor, exclusive=holding.whole)
        for uuid in holding.uuids:
            device = self._by_uuid(uuid)
            if device is None:
                assignment.devices.add(uuid=uuid, reported=False)
                continue
            assignment.vendor = device.vendor
            assigned = device.assigned(holding.key)
            if not assigned.reserved_bytes:
                assigned.reserved_bytes = device.total if holding.whole else holding.vram_per_gpu
            assignment.devices.append(assigned)
        return assignment

    # Services that arrive ---------------------------------------------------------------

    def assign(
        self, key: ServiceKey, spec: service_spec_pb2.ServiceSpec, vram: Figure
    ) -> plan_pb2.GpuAssignment | list[plan_pb2.Refusal]:
        """Chooses and reserves the GPUs of an arriving service, or says why it cannot."""
        request = spec.resources.gpus
        whole = request.vram_per_gpu_bytes == 0
        vendors = (
            VENDOR_PREFERENCE
            if request.vendor == gpu_pb2.GPU_VENDOR_UNSPECIFIED
            else (request.vendor,)
        )
        present = [v for v in vendors if self._present(v)]
        if not present:
            return [self._absent(request, vendors).refusal(key)]
        if request.device_ids:
            return self._assign_pinned(key, request, vendors, whole, vram)
        failures: list[_Failure] = []
        for vendor in present:
            chosen = self._choose(vendor, request.count, whole, vram)
            if isinstance(chosen, _Failure):
                failures.append(chosen)
                continue
            return self._reserve(key, chosen, whole, vram.amount)
        return [_combined(failures).refusal(key)]

    def _choose(
        self, vendor: Vendor, count: int, whole: bool, vram: Figure
    ) -> list[_Device] | _Failure:
        name = vendor_name(vendor)
        want = _wanted(count, name, whole, vram)
        listed = [d for d in self._devices if d.vendor == vendor]
        usable = [d for d in listed if not d.mig]
        if len(usable) < count:
            mig = len(listed) - len(usable)
            also = f" ({mig} more with MIG enabled, which Ozwald does not assign)" if mig else ""
            return _Failure(
                plan_pb2.REFUSAL_REASON_NOT_ENOUGH_GPUS,
                f"{want}; the host has {counted(len(usable), f'usable {name} GPU')}{also}",
                f"ask for fewer GPUs (resources.gpus.count), or run it on a host with more "
                f"{name} GPUs",
                quantity(count, len(usable), len(listed), GPUS),
            )
        if whole:
            return self._choose_whole(usable, count, name, want, vram)
        return self._choose_shared(usable, count, name, want, vram)

    def _choose_whole(
        self, usable: list[_Device], count: int, name: str, want: str, vram: Figure
    ) -> list[_Device] | _Failure:
        unheld = [d for d in usable if not d.holders]
        if len(unheld) < count:
            held = [d for d in usable if d.holders]
            return _Failure(
                plan_pb2.REFUSAL_REASON_GPU_IN_USE,
                f"{want}; only {len(unheld)} of {len(usable)} {name} GPUs are free of other "
                f"services: {_holders_of(held)}",
                "stop services that hold those GPUs, declare resources.gpus.vram_per_gpu so "
                "the service can share a GPU, or ask for fewer GPUs",
                quantity(count, len(unheld), len(usable), GPUS),
                _involved(held),
            )
        ranked = sorted(unheld, key=lambda d: (-d.capacity, d.device.index))
        if ranked[count - 1].capacity < vram.amount:
            closest = ranked[count - 1]
            return _Failure(
                plan_pb2.REFUSAL_REASON_INSUFFICIENT_VRAM,
                f"{want}; {_which(count)} of the free ones, {closest.describe()}, has "
                f"{gib(closest.capacity)} of {gib(closest.total)} usable "
                f"({gib(closest.unmanaged)} used outside Ozwald)",
                "free VRAM on the host's GPUs (processes Ozwald does not run hold it), or run "
                "it on a host with larger GPUs",
                quantity(vram.amount, closest.capacity, closest.total, BYTES),
            )
        return ranked[:count]

    def _choose_shared(
        self, usable: list[_Device], count: int, name: str, want: str, vram: Figure
    ) -> list[_Device] | _Failure:
        open_ = [d for d in usable if not d.exclusive]
        if len(open_) < count:
            held = [d for d in usable if d.exclusive]
            return _Failure(
                plan_pb2.REFUSAL_REASON_GPU_IN_USE,
                f"{want}; only {len(open_)} of {len(usable)} {name} GPUs are not held whole by "
                f"another service: {_holders_of(held)}",
                "stop services that hold GPUs whole, or let them share (declare their "
                "resources.gpus.vram_per_gpu)",
                quantity(count, len(open_), len(usable), GPUS),
                _involved(held),
            )
        roomy = [d for d in open_ if d.free >= vram.amount]
        if len(roomy) < count:
            ranked = sorted(open_, key=lambda d: (-d.free, d.device.index))
            closest = ranked[count - 1]
            enough = (
                ""
                if count == 1
                else f"{len(roomy)} of them {_has(len(roomy))} that much free, and "
            )
            return _Failure(
                plan_pb2.REFUSAL_REASON_INSUFFICIENT_VRAM,
                f"{want}; {enough}{_which(count)}, {closest.describe()}, has {closest.occupancy()}",
                "lower the service's VRAM (resources.gpus.vram_per_gpu, and for vLLM "
                "--gpu-memory-utilization to match), stop services that share those GPUs, or "
                "run it on a host with more free VRAM",
                quantity(vram.amount, closest.free, closest.total, BYTES),
                closest.holder_keys,
            )
        return sorted(roomy, key=lambda d: (d.free, d.device.index))[:count]

    def _assign_pinned(
        self,
        key: ServiceKey,
        request: service_spec_pb2.GpuRequirement,
        vendors: Sequence[Vendor],
        whole: bool,
        vram: Figure,
    ) -> plan_pb2.GpuAssignment | list[plan_pb2.Refusal]:
        failures: list[_Failure] = []
        chosen: list[_Device] = []
        for device_id in request.device_ids:
            found = self._resolve(device_id, vendors)
            if isinstance(found, _Failure):
                failures.append(found)
            else:
                chosen.append(found)
        if failures:
            return [f.refusal(key) for f in failures]
        if len({d.vendor for d in chosen}) > 1:
            return [
                refusal(
                    key,
                    plan_pb2.REFUSAL_REASON_INVALID_SPEC,
                    "resources.gpus.ids names GPUs of several vendors: "
                    + ", ".join(d.describe() for d in chosen),
                    "pin GPUs of one vendor: a container uses one vendor's runtime",
                )
            ]
        for device_id, device in zip(request.device_ids, chosen, strict=True):
            problem = _pinned_problem(device, device_id, whole, vram)
            if problem is not None:
                failures.append(problem)
        if failures:
            return [f.refusal(key) for f in failures]
        return self._reserve(key, chosen, whole, vram.amount)

    def _resolve(self, device_id: str, vendors: Sequence[Vendor]) -> _Device | _Failure:
        """The device a pinned id names among `vendors`' devices, or why there is none."""
        matches = [d for d in self._devices if d.vendor in vendors and _is(d, device_id)]
        names = " or ".join(vendor_name(v) for v in vendors)
        if not matches:
            elsewhere = [d for d in self._devices if d.vendor not in vendors and _is(d, device_id)]
            hint = (
                f" (it is {elsewhere[0].describe()}, but the service asks for {names} GPUs)"
                if elsewhere
                else ""
            )
            return _Failure(
                plan_pb2.REFUSAL_REASON_GPU_ID_NOT_FOUND,
                f"device id {device_id!r} matches no {names} GPU on this host{hint}",
                f"{self._inventory(vendors)}, or leave resources.gpus.ids empty to let "
                "admission choose",
                subject=device_id,
            )
        if len(matches) > 1:
            return _Failure(
                plan_pb2.REFUSAL_REASON_GPU_ID_AMBIGUOUS,
                f"device id {device_id!r} is the index of several GPUs: "
                + ", ".join(d.describe() for d in matches),
                "set resources.gpus.vendor, or pin by UUID: "
                + ", ".join(f"{d.device.uuid} ({d.describe()})" for d in matches),
                subject=device_id,
            )
        device = matches[0]
        if not device.vendor_present:
            absent = self._absent_words(device.vendor)
            return _Failure(
                plan_pb2.REFUSAL_REASON_GPU_VENDOR_ABSENT,
                f"device id {device_id!r} is {device.describe()}, but {absent}",
                _absence_remedy(device.vendor, self._absence_reason(device.vendor)),
                subject=device_id,
            )
        if device.mig:
            return _Failure(
                plan_pb2.REFUSAL_REASON_GPU_IN_MIG_MODE,
                f"device id {device_id!r} is {device.describe()}; {_MIG_NOTE}",
                f"disable MIG on it (`nvidia-smi -i {device.device.index} -mig 0`, then reset "
                "the GPU), or pin another GPU",
                subject=device_id,
            )
        return device

    def _reserve(
        self, key: ServiceKey, devices: Iterable[_Device], whole: bool, vram: int
    ) -> plan_pb2.GpuAssignment:
        assignment = plan_pb2.GpuAssignment(exclusive=whole)
        for device in devices:
            device.reserve(key, whole, vram)
            assignment.vendor = device.vendor
            assignment.devices.append(device.assigned(key))
        return assignment

    # What the host has ------------------------------------------------------------------

    def budget(self) -> list[plan_pb2.GpuBudget]:
        return [
            plan_pb2.GpuBudget(
                vendor=d.vendor,
                index=d.device.index,
                uuid=d.device.uuid,
                name=d.device.name,
                total_bytes=d.total,
                unmanaged_bytes=d.unmanaged,
                reserved_bytes=d.reserved,
                free_bytes=d.free,
                holders=[ref(k) for k in d.holder_keys],
                exclusive=d.exclusive,
                assignable=not d.mig,
                note=_MIG_NOTE if d.mig else "",
            )
            for d in self._devices
            if d.vendor_present
        ]

    def _by_uuid(self, uuid: str) -> _Device | None:
        return next((d for d in self._devices if d.device.uuid == uuid), None)

    def _present(self, vendor: Vendor) -> bool:
        report = self._reports.get(vendor)
        return report is not None and report.present

    def _absence_reason(self, vendor: Vendor) -> gpu_pb2.GpuAbsenceReason.ValueType:
        report = self._reports.get(vendor)
        return (
            report.absence_reason if report is not None else gpu_pb2.GPU_ABSENCE_REASON_UNSPECIFIED
        )

    def _absent_words(self, vendor: Vendor) -> str:
        """'NVIDIA GPUs are absent on this host (no driver): <the detector's words>'"""
        name = vendor_name(vendor)
        report = self._reports.get(vendor)
        if report is None:
            return f"{name} GPUs are absent on this host (its profile has no {name} report)"
        why = _ABSENCE_WORDS.get(report.absence_reason, "not usable")
        detail = f": {report.detail}" if report.detail else ""
        return f"{name} GPUs are absent on this host ({why}){detail}"

    def _absent(
        self, request: service_spec_pb2.GpuRequirement, vendors: Sequence[Vendor]
    ) -> _Failure:
        count = request.count or len(request.device_ids)
        if len(vendors) == 1:
            vendor = vendors[0]
            return _Failure(
                plan_pb2.REFUSAL_REASON_GPU_VENDOR_ABSENT,
                f"needs {counted(count, f'{vendor_name(vendor)} GPU')}; "
                f"{self._absent_words(vendor)}",
                _absence_remedy(vendor, self._absence_reason(vendor)),
                quantity(count, 0, 0, GPUS),
                subject=vendor_name(vendor),
            )
        return _Failure(
            plan_pb2.REFUSAL_REASON_GPU_VENDOR_ABSENT,
            f"needs {counted(count, 'GPU')} of any vendor; no GPU vendor is present on this "
            f"host. " + ". ".join(self._absent_words(v) for v in vendors),
            "run it on a host with GPUs, or choose a variety that needs none (e.g. "
            "`service[cpu]`)"
            + "".join(
                f"; {vendor_name(v)}: {fix}"
                for v in vendors
                if (fix := _absence_fix(v, self._absence_reason(v))) is not None
            ),
            quantity(count, 0, 0, GPUS),
        )

    def _inventory(self, vendors: Sequence[Vendor]) -> str:
        usable = [d for d in self._devices if d.vendor in vendors and d.vendor_present]
        if not usable:
            return "this host has no usable GPU of that vendor; run it elsewhere"
        return "use one of this host's GPUs, by index or UUID: " + "; ".join(
            f"{vendor_name(d.vendor)} {d.device.index} = {d.device.uuid} ({d.device.name})"
            for d in usable
        )


def _pinned_problem(device: _Device, device_id: str, whole: bool, vram: Figure) -> _Failure | None:
    if whole and device.holders:
        return _Failure(
            plan_pb2.REFUSAL_REASON_GPU_IN_USE,
            f"needs {device.describe()} whole; {labels(device.holder_keys)} "
            f"{'holds' if len(device.holders) == 1 else 'hold'} it or part of it",
            "stop the services that use that GPU, pin another one, or declare "
            "resources.gpus.vram_per_gpu so the service can share it",
            involved=device.holder_keys,
            subject=device_id,
        )
    if whole and device.capacity < vram.amount:
        return _Failure(
            plan_pb2.REFUSAL_REASON_INSUFFICIENT_VRAM,
            f"needs {device.describe()} whole with {gib(vram.amount)} VRAM "
            f"({vram.provenance()}); it has {gib(device.capacity)} of {gib(device.total)} "
            f"usable ({gib(device.unmanaged)} used outside Ozwald)",
            "free VRAM on that GPU (processes Ozwald does not run hold it), or pin another one",
            quantity(vram.amount, device.capacity, device.total, BYTES),
            subject=device_id,
        )
    if not whole and device.exclusive:
        return _Failure(
            plan_pb2.REFUSAL_REASON_GPU_IN_USE,
            f"needs {gib(vram.amount)} VRAM on {device.describe()}; "
            f"{labels(device.holder_keys)} holds it whole",
            "stop that service, let it share the GPU (declare its "
            "resources.gpus.vram_per_gpu), or pin another GPU",
            involved=device.holder_keys,
            subject=device_id,
        )
    if not whole and device.free < vram.amount:
        return _Failure(
            plan_pb2.REFUSAL_REASON_INSUFFICIENT_VRAM,
            f"needs {gib(vram.amount)} VRAM ({vram.provenance()}) on {device.describe()}; it "
            f"has {device.occupancy()}",
            "lower the service's VRAM (resources.gpus.vram_per_gpu), stop services that share "
            "that GPU, or pin another one",
            quantity(vram.amount, device.free, device.total, BYTES),
            device.holder_keys,
            subject=device_id,
        )
    return None


def _is(device: _Device, device_id: str) -> bool:
    """A pinned id names a device by UUID (any case) or by its vendor index."""
    if device_id.isdecimal():
        return int(device_id) == device.device.index
    return device_id.lower() == device.device.uuid.lower()


def _wanted(count: int, name: str, whole: bool, vram: Figure) -> str:
    if not whole:
        return (
            f"needs {gib(vram.amount)} VRAM ({vram.provenance()}) on each of "
            f"{counted(count, f'{name} GPU')}"
        )
    memory = f" with {gib(vram.amount)} VRAM ({vram.provenance()})" if vram.amount else ""
    return f"needs {counted(count, f'whole {name} GPU')}{memory}"


def _which(count: int) -> str:
    """The count-th roomiest candidate, in words: the one that would have had to fit."""
    if count == 1:
        return "the roomiest"
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(count % 10 if count % 100 not in (11, 12, 13) else 0)
    return f"the {count}{suffix or 'th'} roomiest"


def _has(number: int) -> str:
    return "has" if number == 1 else "have"


def _holders_of(devices: Sequence[_Device]) -> str:
    return "; ".join(f"GPU {d.device.index} is held by {labels(d.holder_keys)}" for d in devices)


def _involved(devices: Sequence[_Device]) -> tuple[ServiceKey, ...]:
    return tuple(sorted({k for d in devices for k in d.holders}))


def _combined(failures: Sequence[_Failure]) -> _Failure:
    """One refusal for "any vendor" when every present vendor failed; the first leads."""
    if len(failures) == 1:
        return failures[0]
    first = failures[0]
    return _Failure(
        first.reason,
        "; and ".join(f.message for f in failures),
        first.remedy,
        first.quantity,
        tuple(sorted({k for f in failures for k in f.involved})),
    )


def _absence_remedy(vendor: Vendor, reason: gpu_pb2.GpuAbsenceReason.ValueType) -> str:
    elsewhere = (
        f"run it on a host with {vendor_name(vendor)} GPUs, or choose a variety that needs "
        "none (e.g. `service[cpu]`)"
    )
    fix = _absence_fix(vendor, reason)
    return elsewhere if fix is None else f"{fix}; or {elsewhere}"


def _absence_fix(vendor: Vendor, reason: gpu_pb2.GpuAbsenceReason.ValueType) -> str | None:
    """What makes a vendor's GPUs usable on this host, when it has them; None when it has
    none."""
    name = vendor_name(vendor)
    binding = "nvidia-ml-py" if vendor == NVIDIA else "amdsmi"
    if reason == gpu_pb2.GPU_ABSENCE_REASON_NO_DEVICES:
        return None
    return {
        gpu_pb2.GPU_ABSENCE_REASON_NO_DRIVER: (
            f"if the host has {name} GPUs, install and load the {name} driver, then restart "
            "the agent"
        ),
        gpu_pb2.GPU_ABSENCE_REASON_LIBRARY_MISSING: (
            f"install {binding} in the agent's environment, then restart the agent"
        ),
        gpu_pb2.GPU_ABSENCE_REASON_PERMISSION_DENIED: (
            "let the agent's user open the GPU devices (run the agent as root or fix the "
            "device permissions), then restart it"
        ),
        gpu_pb2.GPU_ABSENCE_REASON_LIBRARY_ERROR: (
            f"fix what the {name} library reports (often a driver and library version "
            "mismatch: reboot or reinstall the driver), then restart the agent"
        ),
    }.get(reason, f"`ozwald host` shows why {name} GPUs are unusable; fix that")
