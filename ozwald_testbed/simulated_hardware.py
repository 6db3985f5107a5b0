"""Hardware for simulated hosts: read from the recorded GPU fixtures or from the openb trace.

A simulated host needs what an agent would report in its HostProfile: cores, memory and its
GPUs. Two sources give it:

- the recorded hardware snapshots under tests/fixtures/hardware (the GPU libraries' answers
  as `ozwald-agent record-hardware` keeps them). They record only the GPUs, so cores and
  memory are given by the caller. This module reads them without the agent's detectors
  (the testbed never imports ozwald_agent): it keeps the facts a placement needs (vendor,
  name, VRAM, MIG, what is already used) and, when a vendor's library failed, its reason.
- a row of the openb GPU node list (../shared/data/openb/openb_node_list_gpu_node.csv):
  cpu_milli, memory_mib, GPU count and model. The trace names its GPU models but not their
  memory; OPENB_GPU_MODELS gives the public VRAM of each named one, and the undisclosed
  internal codes (G1, G2, G3) a stated assumption.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import timestamp_pb2
from ozwald.common.v1 import container_runtime_pb2, gpu_pb2, host_profile_pb2

GIB = 1 << 30
MIB = 1 << 20

# NVML's and amdsmi's failure names, mapped to the absence reasons a real agent reports.
_ABSENCE_BY_CODE: Mapping[str, gpu_pb2.GpuAbsenceReason.ValueType] = {
    "NVML_ERROR_LIBRARY_NOT_FOUND": gpu_pb2.GPU_ABSENCE_REASON_LIBRARY_MISSING,
    "IMPORT_MODULE_MISSING": gpu_pb2.GPU_ABSENCE_REASON_LIBRARY_MISSING,
    "IMPORT_FAILED": gpu_pb2.GPU_ABSENCE_REASON_LIBRARY_MISSING,
    "NVML_ERROR_DRIVER_NOT_LOADED": gpu_pb2.GPU_ABSENCE_REASON_NO_DRIVER,
    "AMDSMI_STATUS_DRIVER_NOT_LOADED": gpu_pb2.GPU_ABSENCE_REASON_NO_DRIVER,
    "NVML_ERROR_NO_PERMISSION": gpu_pb2.GPU_ABSENCE_REASON_PERMISSION_DENIED,
}


@dataclass(frozen=True)
class OpenbGpuModel:
    """What the trace's GPU model code stands for."""

    name: str
    vram_bytes: int


# Public figures for the disclosed models; the trace does not say what G1-G3 are, so they
# are simulated as 32 GiB cards and named so that nobody mistakes them for a real product.
OPENB_GPU_MODELS: Mapping[str, OpenbGpuModel] = {
    "P100": OpenbGpuModel("NVIDIA Tesla P100-PCIE-16GB", 16 * GIB),
    "T4": OpenbGpuModel("NVIDIA Tesla T4", 16 * GIB),
    "V100M16": OpenbGpuModel("NVIDIA Tesla V100-SXM2-16GB", 16 * GIB),
    "V100M32": OpenbGpuModel("NVIDIA Tesla V100-SXM2-32GB", 32 * GIB),
    "A10": OpenbGpuModel("NVIDIA A10", 24 * GIB),
    "G1": OpenbGpuModel("openb G1 (undisclosed model)", 32 * GIB),
    "G2": OpenbGpuModel("openb G2 (undisclosed model)", 32 * GIB),
    "G3": OpenbGpuModel("openb G3 (undisclosed model)", 32 * GIB),
}


@dataclass(frozen=True)
class SimulatedGpu:
    """One GPU of a simulated host."""

    vendor: gpu_pb2.GpuVendor.ValueType
    index: int
    uuid: str
    name: str
    memory_total_bytes: int
    # VRAM held by processes Ozwald does not run (a fixture's recorded usage).
    memory_used_bytes: int = 0
    mig_enabled: bool = False
    pci_bus_id: str = ""
    render_node: str = ""


@dataclass(frozen=True)
class VendorAbsence:
    """Why a vendor's GPUs are not available on the host."""

    reason: gpu_pb2.GpuAbsenceReason.ValueType
    detail: str


@dataclass(frozen=True)
class SimulatedHardware:
    """What a simulated host has: cores, memory and GPUs."""

    description: str
    logical_cores: int
    memory_total_bytes: int
    gpus: tuple[SimulatedGpu, ...] = ()
    cpu_model: str = "Simulated CPU"
    # Vendors without usable GPUs, with the reason a real agent would give.
    absences: Mapping[gpu_pb2.GpuVendor.ValueType, VendorAbsence] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def profile(
        self,
        hostname: str,
        *,
        memory_available_bytes: int | None = None,
        gpu_used_bytes: Mapping[str, int] | None = None,
        collected_at: float | None = None,
    ) -> host_profile_pb2.HostProfile:
        """The HostProfile an agent on this hardware would send now.

        `memory_available_bytes` is what the host has left (all of it when not given);
        `gpu_used_bytes` adds VRAM used by the host's instances to each GPU, by UUID.
        """
        used = gpu_used_bytes or {}
        profile = host_profile_pb2.HostProfile(
            hostname=hostname,
            cpu=host_profile_pb2.CpuInfo(
                model=self.cpu_model,
                logical_cores=self.logical_cores,
                physical_cores=self.logical_cores,
                usable_cores=self.logical_cores,
                architecture="x86_64",
            ),
            memory=host_profile_pb2.MemoryInfo(
                total_bytes=self.memory_total_bytes,
                available_bytes=(
                    self.memory_total_bytes
                    if memory_available_bytes is None
                    else max(0, memory_available_bytes)
                ),
            ),
            container_runtime=container_runtime_pb2.ContainerRuntimeInfo(
                kind="simulated",
                endpoint="simulated://",
                reachable=True,
                engine_version="simulated",
            ),
            operating_system=host_profile_pb2.OperatingSystemInfo(
                kernel_name="Linux", distribution="simulated host"
            ),
            agent_version="simulated",
        )
        if collected_at is not None:
            profile.collected_at.CopyFrom(_timestamp(collected_at))
        for vendor in (gpu_pb2.GPU_VENDOR_NVIDIA, gpu_pb2.GPU_VENDOR_AMD):
            profile.gpu_vendors.append(self._vendor_report(vendor, used))
        return profile

    def _vendor_report(
        self, vendor: gpu_pb2.GpuVendor.ValueType, used: Mapping[str, int]
    ) -> gpu_pb2.GpuVendorReport:
        devices = [g for g in self.gpus if g.vendor == vendor]
        absence = self.absences.get(vendor)
        if not devices:
            reason = absence or VendorAbsence(gpu_pb2.GPU_ABSENCE_REASON_NO_DEVICES, "no devices")
            return gpu_pb2.GpuVendorReport(
                vendor=vendor,
                present=False,
                absence_reason=reason.reason,
                detail=reason.detail,
                detection_method="simulated",
            )
        report = gpu_pb2.GpuVendorReport(
            vendor=vendor, present=True, detection_method="simulated", warnings=self.warnings
        )
        for gpu in devices:
            taken = min(gpu.memory_total_bytes, gpu.memory_used_bytes + used.get(gpu.uuid, 0))
            mig = gpu_pb2.MIG_MODE_ENABLED if gpu.mig_enabled else gpu_pb2.MIG_MODE_DISABLED
            report.devices.append(
                gpu_pb2.GpuDevice(
                    vendor=vendor,
                    index=gpu.index,
                    uuid=gpu.uuid,
                    name=gpu.name,
                    pci_bus_id=gpu.pci_bus_id,
                    memory_total_bytes=gpu.memory_total_bytes,
                    memory_used_bytes=taken,
                    memory_free_bytes=gpu.memory_total_bytes - taken,
                    mig_mode=mig,
                    mig_mode_pending=mig,
                    render_node=gpu.render_node,
                )
            )
        return report


def from_fixture(
    path: Path, *, logical_cores: int = 32, memory_total_bytes: int = 256 * GIB
) -> SimulatedHardware:
    """A host with the GPUs a recorded snapshot describes, and the given cores and memory.

    Raises ValueError when the file is not a snapshot (format_version 1).
    """
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not JSON: {e}") from e
    if not isinstance(document, dict) or document.get("format_version") != 1:
        raise ValueError(f"{path} is not a hardware snapshot with format_version 1")
    warnings: list[str] = []
    absences: dict[gpu_pb2.GpuVendor.ValueType, VendorAbsence] = {}
    nvidia = _nvml_gpus(_mapping(document.get("nvml")), warnings, absences)
    amd = _amdsmi_gpus(_mapping(document.get("amdsmi")), warnings, absences)
    if amd is None:
        amd = _sysfs_amd_gpus(_mapping(document.get("sysfs")), document.get("dev"), absences)
    return SimulatedHardware(
        description=f"{path.name}: {document.get('description', '')}",
        logical_cores=logical_cores,
        memory_total_bytes=memory_total_bytes,
        gpus=(*nvidia, *amd),
        absences=absences,
        warnings=tuple(warnings),
    )


def from_openb_row(row: Mapping[str, str]) -> SimulatedHardware:
    """A host from one row of the openb node list (sn, cpu_milli, memory_mib, gpu, model).

    Raises ValueError for a row whose figures are not numbers or whose model is unknown.
    """
    name = row.get("sn", "")
    try:
        cores = max(1, int(row["cpu_milli"]) // 1000)
        memory = int(row["memory_mib"]) * MIB
        count = int(row.get("gpu") or 0)
    except (KeyError, ValueError) as e:
        raise ValueError(f"openb node {name!r}: bad figures {dict(row)}: {e}") from e
    code = (row.get("model") or "").strip()
    gpus: list[SimulatedGpu] = []
    if count:
        model = OPENB_GPU_MODELS.get(code)
        if model is None:
            raise ValueError(
                f"openb node {name!r}: unknown GPU model {code!r}; known: "
                + ", ".join(sorted(OPENB_GPU_MODELS))
            )
        gpus = [
            SimulatedGpu(
                vendor=gpu_pb2.GPU_VENDOR_NVIDIA,
                index=i,
                uuid=_uuid(f"{name}/{i}"),
                name=model.name,
                memory_total_bytes=model.vram_bytes,
                pci_bus_id=f"00000000:{0x10 + i:02X}:00.0",
            )
            for i in range(count)
        ]
    return SimulatedHardware(
        description=f"openb {name}: {cores} cores, {memory // MIB} MiB, {count} x {code or '-'}",
        logical_cores=cores,
        memory_total_bytes=memory,
        gpus=tuple(gpus),
    )


def openb_rows(path: Path) -> Iterator[dict[str, str]]:
    """The rows of an openb node list CSV, in file order."""
    with path.open(newline="") as f:
        yield from csv.DictReader(f)


def load_fixtures(directory: Path, names: Sequence[str] | None = None) -> list[SimulatedHardware]:
    """Every snapshot in `directory` (or the named ones, without .json), sorted by name."""
    paths = (
        sorted(directory.glob("*.json"))
        if names is None
        else [directory / f"{n}.json" for n in names]
    )
    return [from_fixture(p) for p in paths]


def _nvml_gpus(
    nvml: Mapping[str, object],
    warnings: list[str],
    absences: dict[gpu_pb2.GpuVendor.ValueType, VendorAbsence],
) -> list[SimulatedGpu]:
    failed = _error(nvml.get("init"))
    if failed is not None:
        absences[gpu_pb2.GPU_VENDOR_NVIDIA] = _absence(failed)
        return []
    gpus = []
    for i, device in enumerate(_list(nvml.get("devices"))):
        fields = _mapping(device)
        uuid, name, memory = (_value(fields.get(k)) for k in ("uuid", "name", "memory"))
        if not isinstance(uuid, str) or not isinstance(name, str) or not isinstance(memory, dict):
            # A device NVML counts but cannot query (e.g. fallen off the bus) is unusable.
            problem = _error(fields.get("uuid")) or _error(fields.get("memory"))
            detail = f"{problem[0]}: {problem[1]}" if problem else "not queryable"
            warnings.append(f"NVIDIA GPU {i} is left out: {detail}")
            continue
        mig = _value(fields.get("mig_mode"))
        gpus.append(
            SimulatedGpu(
                vendor=gpu_pb2.GPU_VENDOR_NVIDIA,
                index=i,
                uuid=uuid,
                name=name,
                memory_total_bytes=int(memory.get("total", 0)),
                memory_used_bytes=int(memory.get("used", 0)),
                mig_enabled=isinstance(mig, list) and bool(mig) and mig[0] == 1,
                pci_bus_id=str(_value(fields.get("pci_bus_id")) or ""),
            )
        )
    if not gpus and not warnings:
        absences[gpu_pb2.GPU_VENDOR_NVIDIA] = VendorAbsence(
            gpu_pb2.GPU_ABSENCE_REASON_NO_DEVICES, "NVML reports no devices"
        )
    return gpus


def _amdsmi_gpus(
    amdsmi: Mapping[str, object],
    warnings: list[str],
    absences: dict[gpu_pb2.GpuVendor.ValueType, VendorAbsence],
) -> list[SimulatedGpu] | None:
    """AMD GPUs as amdsmi answered, or None when amdsmi failed (sysfs is tried next)."""
    failed = _error(amdsmi.get("init"))
    if failed is not None:
        absences[gpu_pb2.GPU_VENDOR_AMD] = _absence(failed)
        return None
    gpus = []
    for i, device in enumerate(_list(amdsmi.get("devices"))):
        fields = _mapping(device)
        asic = _value(fields.get("asic_info"))
        total = _value(fields.get("vram_total_bytes"))
        if not isinstance(asic, dict) or not isinstance(total, int):
            warnings.append(f"AMD GPU {i}: not queryable through amdsmi")
            continue
        bus = str(_value(fields.get("pci_bus_id")) or "")
        serial = str(asic.get("asic_serial", ""))
        minor = _value(fields.get("drm_render_minor"))
        used = _value(fields.get("vram_used_bytes"))
        gpus.append(
            SimulatedGpu(
                vendor=gpu_pb2.GPU_VENDOR_AMD,
                index=i,
                uuid=serial if serial and serial != "N/A" else _uuid(f"amd/{bus}"),
                name=str(asic.get("market_name", "AMD GPU")),
                memory_total_bytes=total,
                memory_used_bytes=used if isinstance(used, int) else 0,
                pci_bus_id=bus,
                render_node=f"/dev/dri/renderD{minor}" if isinstance(minor, int) else "",
            )
        )
    absences.pop(gpu_pb2.GPU_VENDOR_AMD, None)
    return gpus


def _sysfs_amd_gpus(
    sysfs: Mapping[str, object],
    dev: object,
    absences: dict[gpu_pb2.GpuVendor.ValueType, VendorAbsence],
) -> list[SimulatedGpu]:
    """AMD GPUs the amdgpu driver exposes in sysfs; they need /dev/kfd to run compute."""
    cards = sorted(
        {
            key.split("/")[2]
            for key, text in sysfs.items()
            if key.endswith("/device/vendor") and str(text).strip() == "0x1002"
        }
    )
    with_vram = [c for c in cards if f"class/drm/{c}/device/mem_info_vram_total" in sysfs]
    if not with_vram:
        return []
    if "kfd" not in (dev if isinstance(dev, list) else []):
        absences[gpu_pb2.GPU_VENDOR_AMD] = VendorAbsence(
            gpu_pb2.GPU_ABSENCE_REASON_NO_DRIVER,
            "amdgpu is loaded but /dev/kfd is missing (kernel built without HSA/KFD)",
        )
        return []
    gpus = []
    for i, card in enumerate(with_vram):
        base = f"class/drm/{card}/device/"
        render = [k.split("/")[5] for k in sysfs if k.startswith(f"{base}drm/renderD")]
        uevent = str(sysfs.get(f"{base}uevent", ""))
        bus = next((ln.split("=", 1)[1] for ln in uevent.splitlines() if "SLOT_NAME" in ln), "")
        unique = str(sysfs.get(f"{base}unique_id", "")).strip()
        gpus.append(
            SimulatedGpu(
                vendor=gpu_pb2.GPU_VENDOR_AMD,
                index=i,
                uuid=unique or _uuid(f"amd/{bus}"),
                name=str(sysfs.get(f"{base}product_name", "AMD GPU")).strip(),
                memory_total_bytes=int(str(sysfs[f"{base}mem_info_vram_total"]).strip()),
                memory_used_bytes=int(str(sysfs.get(f"{base}mem_info_vram_used", "0")).strip()),
                pci_bus_id=bus,
                render_node=f"/dev/dri/{render[0]}" if render else "",
            )
        )
    absences.pop(gpu_pb2.GPU_VENDOR_AMD, None)
    return gpus


def _absence(failure: tuple[str, str]) -> VendorAbsence:
    code, message = failure
    reason = _ABSENCE_BY_CODE.get(code, gpu_pb2.GPU_ABSENCE_REASON_LIBRARY_ERROR)
    return VendorAbsence(reason, f"{code}: {message}")


def _value(answer: object) -> object:
    return answer.get("value") if isinstance(answer, dict) else None


def _error(answer: object) -> tuple[str, str] | None:
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        error = answer["error"]
        return str(error.get("code", "")), str(error.get("message", ""))
    return None


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _uuid(seed: str) -> str:
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return f"GPU-{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp
