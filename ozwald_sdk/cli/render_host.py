"""A HostProfile as text for people (`ozwald host`) and as JSON for machines (`--json`)."""

from __future__ import annotations

from google.protobuf import json_format
from ozwald.common.v1.container_runtime_pb2 import (
    ContainerRuntimeInfo,
    ContainerRuntimeUnreachableReason,
)
from ozwald.common.v1.gpu_pb2 import (
    GPU_VENDOR_AMD,
    GPU_VENDOR_NVIDIA,
    MIG_MODE_UNSPECIFIED,
    GpuAbsenceReason,
    GpuDevice,
    GpuVendor,
    GpuVendorReport,
    MigMode,
)
from ozwald.common.v1.host_profile_pb2 import CpuInfo, DiskInfo, HostProfile, MemoryInfo

from ozwald_sdk.cli.text import WIDTH, Section, gib, human_bytes, render_table

_VENDOR_NAMES: dict[GpuVendor.ValueType, str] = {
    GPU_VENDOR_NVIDIA: "NVIDIA",
    GPU_VENDOR_AMD: "AMD",
}

# Each absence reason: a short name, and what it means.
_ABSENCE: dict[GpuAbsenceReason.ValueType, tuple[str, str]] = {
    GpuAbsenceReason.GPU_ABSENCE_REASON_NO_DEVICES: (
        "no devices",
        "no GPU of this vendor is on this host",
    ),
    GpuAbsenceReason.GPU_ABSENCE_REASON_NO_DRIVER: (
        "no driver",
        "the kernel driver is not loaded or the vendor's library is not installed",
    ),
    GpuAbsenceReason.GPU_ABSENCE_REASON_LIBRARY_MISSING: (
        "library missing",
        "the agent's Python binding for this vendor (nvidia-ml-py, amdsmi) is not installed",
    ),
    GpuAbsenceReason.GPU_ABSENCE_REASON_PERMISSION_DENIED: (
        "permission denied",
        "the agent's user may not open the devices",
    ),
    GpuAbsenceReason.GPU_ABSENCE_REASON_LIBRARY_ERROR: (
        "library error",
        "the vendor's library is installed but failed",
    ),
}

_UNREACHABLE: dict[ContainerRuntimeUnreachableReason.ValueType, str] = {
    ContainerRuntimeUnreachableReason.CONTAINER_RUNTIME_UNREACHABLE_REASON_SOCKET_MISSING: (
        "no socket at its address: the engine is not installed or not started"
    ),
    ContainerRuntimeUnreachableReason.CONTAINER_RUNTIME_UNREACHABLE_REASON_PERMISSION_DENIED: (
        "the agent's user may not open its socket (not root, not in the docker group)"
    ),
    ContainerRuntimeUnreachableReason.CONTAINER_RUNTIME_UNREACHABLE_REASON_CONNECTION_REFUSED: (
        "its socket exists but nothing accepts connections on it"
    ),
    ContainerRuntimeUnreachableReason.CONTAINER_RUNTIME_UNREACHABLE_REASON_TIMEOUT: (
        "it did not answer within the agent's deadline"
    ),
    ContainerRuntimeUnreachableReason.CONTAINER_RUNTIME_UNREACHABLE_REASON_API_ERROR: (
        "it answered with an error"
    ),
    ContainerRuntimeUnreachableReason.CONTAINER_RUNTIME_UNREACHABLE_REASON_BAD_ADDRESS: (
        "its address is invalid"
    ),
}

_MIG: dict[MigMode.ValueType, str] = {
    MigMode.MIG_MODE_NOT_SUPPORTED: "n/a",
    MigMode.MIG_MODE_DISABLED: "off",
    MigMode.MIG_MODE_ENABLED: "on",
}


def host_profile_json(profile: HostProfile) -> str:
    """Every field, defaults included, under its proto name: stable for scripts."""
    return json_format.MessageToJson(
        profile,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
        indent=2,
    )


def render_host_profile(profile: HostProfile, width: int = WIDTH) -> str:
    """Sections for the host, CPU, memory, state disk, container engine and each GPU vendor."""
    sections = [
        _host(profile),
        _cpu(profile.cpu),
        _memory(profile.memory),
        _state_disk(profile.state_disk),
        _container_runtime(profile.container_runtime),
    ]
    reports = {report.vendor: report for report in profile.gpu_vendors}
    for vendor, name in _VENDOR_NAMES.items():
        sections.append(_gpu_vendor(name, reports.get(vendor), width))
    return "\n\n".join(section.render(width) for section in sections) + "\n"


def _host(profile: HostProfile) -> Section:
    section = Section("Host")
    section.add("Hostname", profile.hostname)
    os_info = profile.operating_system
    kernel = " ".join(filter(None, (os_info.kernel_name, os_info.kernel_release)))
    section.add("Operating system", ", ".join(filter(None, (os_info.distribution, kernel))))
    section.add("Agent", f"ozwald-agent {profile.agent_version}" if profile.agent_version else "")
    if profile.HasField("collected_at"):
        collected = profile.collected_at.ToDatetime().strftime("%Y-%m-%d %H:%M:%S UTC")
        took = profile.collection_duration.ToTimedelta().total_seconds()
        section.add("Collected", f"{collected} (took {took:.2f} s)")
    return section


def _cpu(cpu: CpuInfo) -> Section:
    section = Section("CPU")
    model = cpu.model or "unknown model"
    section.add("Model", f"{model} ({cpu.architecture})" if cpu.architecture else model)
    physical = f"{cpu.physical_cores} physical" if cpu.physical_cores else "physical unknown"
    section.add(
        "Cores",
        f"{cpu.logical_cores} logical, {physical}, {cpu.usable_cores} usable by the agent",
    )
    section.add(
        "Load average",
        f"{cpu.load_average_1m:.2f}, {cpu.load_average_5m:.2f}, "
        f"{cpu.load_average_15m:.2f} (1, 5, 15 min)",
    )
    return section


def _memory(memory: MemoryInfo) -> Section:
    section = Section("Memory")
    section.add("Total", human_bytes(memory.total_bytes))
    section.add("Available", _bytes_and_share(memory.available_bytes, memory.total_bytes))
    section.add("Swap", human_bytes(memory.swap_total_bytes) if memory.swap_total_bytes else "none")
    return section


def _state_disk(disk: DiskInfo) -> Section:
    section = Section("State disk")
    section.add("Path", disk.path)
    section.add("Size", human_bytes(disk.total_bytes))
    section.add("Used", _bytes_and_share(disk.used_bytes, disk.total_bytes))
    section.add("Free", human_bytes(disk.free_bytes))
    return section


def _container_runtime(runtime: ContainerRuntimeInfo) -> Section:
    section = Section("Container runtime")
    kind = runtime.kind or "container engine"
    if not runtime.reachable:
        section.add("Engine", f"{kind}, unreachable")
        section.add("Reason", _UNREACHABLE.get(runtime.unreachable_reason, "no reason given"))
        section.add("Endpoint", runtime.endpoint)
        section.add("Detail", runtime.detail)
        return section
    api = f" (API {runtime.api_version})" if runtime.api_version else ""
    section.add("Engine", f"{kind} {runtime.engine_version}{api}")
    section.add("Endpoint", runtime.endpoint)
    section.add("Storage driver", runtime.storage_driver)
    cgroup = f"v{runtime.cgroup_version}" if runtime.cgroup_version else "unknown version"
    driver = f", {runtime.cgroup_driver} driver" if runtime.cgroup_driver else ""
    section.add("Cgroups", cgroup + driver)
    section.add("Runtimes", ", ".join(runtime.runtimes))
    section.add(
        "NVIDIA runtime", "registered" if runtime.nvidia_runtime_available else "not registered"
    )
    devices = runtime.cdi_devices
    section.add("CDI devices", f"{len(devices)}: {', '.join(devices)}" if devices else "none")
    return section


def _gpu_vendor(name: str, report: GpuVendorReport | None, width: int) -> Section:
    section = Section(f"{name} GPUs")
    if report is None:
        section.add("Status", "not reported by this agent (it may be older than this client)")
        return section
    if report.present:
        count = len(report.devices)
        method = f" via {report.detection_method}" if report.detection_method else ""
        section.add("Status", f"{count} device{'' if count == 1 else 's'}{method}")
    else:
        short, meaning = _ABSENCE.get(
            report.absence_reason, ("unknown", "the agent gave no reason")
        )
        section.add("Status", f"absent ({short})")
        section.add("Reason", meaning)
    driver = report.driver_version
    if report.cuda_version:
        driver = (
            f"{driver}, CUDA {report.cuda_version}" if driver else f"CUDA {report.cuda_version}"
        )
    if driver:
        section.add("Driver", driver)
    if report.detail:
        section.add("Detail", report.detail)
    for warning in report.warnings:
        section.add("Warning", warning)
    if report.devices:
        section.lines = _gpu_table(report, width)
    return section


def _gpu_table(report: GpuVendorReport, width: int) -> list[str]:
    nvidia = report.vendor == GPU_VENDOR_NVIDIA
    headers = ["#", "Name", "Used / total GiB", "Compute" if nvidia else "Render node"]
    if nvidia:
        headers.append("MIG")
    headers.append("Procs")
    rows = []
    for device in report.devices:
        row = [
            str(device.index),
            device.name,
            f"{gib(device.memory_used_bytes)} / {gib(device.memory_total_bytes)}",
            (device.compute_capability if nvidia else device.render_node) or "-",
        ]
        if nvidia:
            row.append(_mig(device))
        row.append(str(len(device.processes)))
        rows.append(row)
    last = len(headers) - 1
    return render_table(headers, rows, shrink=1, right={0, 2, last}, width=width)


def _mig(device: GpuDevice) -> str:
    current = _MIG.get(device.mig_mode, "-")
    pending = device.mig_mode_pending
    if pending in (MIG_MODE_UNSPECIFIED, device.mig_mode):
        return current
    return f"{current} (next: {_MIG.get(pending, '-')})"


def _bytes_and_share(part: int, whole: int) -> str:
    share = f" ({100 * part / whole:.0f}%)" if whole else ""
    return human_bytes(part) + share
