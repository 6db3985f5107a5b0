"""The fleet as text for people: hosts, deployments and instances.

Every table fits 80 columns: the widest free-text column (reasons, labels) gives way
first, cut short with an ellipsis; `--json` has everything uncut.
"""

from __future__ import annotations

import datetime
import textwrap
from collections import Counter
from collections.abc import Sequence

from ozwald.common.v1 import gpu_pb2
from ozwald.common.v1.host_profile_pb2 import HostProfile
from ozwald.orchestrator.v1 import deployment_pb2, fleet_state_pb2

from ozwald_sdk.cli.fleet_options import age, iso
from ozwald_sdk.cli.render_services import fit_table
from ozwald_sdk.cli.text import INDENT, WIDTH, Section, human_bytes

FS = fleet_state_pb2

_HOST_HEADERS = ("HOST", "STATE", "SINCE", "SEEN", "GPUS", "MEMORY", "CPUS", "ASSIGNED", "LABELS")
_HOST_SHRINK = ((8, 12), (4, 12), (0, 12), (8, 0), (4, 5))
_DEPLOYMENT_HEADERS = ("DEPLOYMENT", "SERVICE", "VARIETIES", "READY", "PENDING", "VERSION", "AGE")
_DEPLOYMENT_SHRINK = ((1, 12), (0, 16), (2, 8))
_INSTANCE_HEADERS = ("INSTANCE", "HOST", "VARIETY", "STATE", "SINCE", "MOVES", "REASON")
_INSTANCE_SHRINK = ((6, 16), (1, 12), (0, 16), (6, 0))
_VENDOR_WORDS = {gpu_pb2.GPU_VENDOR_NVIDIA: "nvidia", gpu_pb2.GPU_VENDOR_AMD: "amd"}


def host_state_name(state: FS.HostState.ValueType) -> str:
    return FS.HostState.Name(state).removeprefix("HOST_STATE_")


def instance_state_name(state: FS.InstanceState.ValueType) -> str:
    return FS.InstanceState.Name(state).removeprefix("INSTANCE_STATE_").replace("_", "-")


def gpu_summary(profile: HostProfile) -> str:
    """`2x NVIDIA H100 80GB HBM3`, one part per model; `-` without GPUs."""
    models: Counter[str] = Counter()
    for report in profile.gpu_vendors:
        for device in report.devices:
            models[_model(device) or _VENDOR_WORDS.get(device.vendor, "gpu")] += 1
    return ", ".join(f"{count}x {name}" for name, count in models.items()) or "-"


def _model(device: gpu_pb2.GpuDevice) -> str:
    """The model without the vendor's name, which the column has no room to repeat."""
    words = device.name.split()
    if words and words[0].lower() in ("nvidia", "amd"):
        words = words[1:]
    return " ".join(words)


def render_hosts(hosts: Sequence[FS.Host], now: datetime.datetime, width: int = WIDTH) -> str:
    """One row per host: state and since when, last heard of, hardware, assignment, labels."""
    if not hosts:
        return (
            "No host has joined the fleet yet. Start agents with\n"
            "`ozwald-agent --orchestrator HOST:PORT --fleet-cert ... --fleet-key ... "
            "--fleet-ca ...`\n"
            "and certificates from `ozwald ca issue --role agent HOST_ID` (docs/certificates.md).\n"
        )
    rows = [
        [
            host.id,
            _state(host),
            age(host.state_since, now),
            age(host.last_seen, now),
            gpu_summary(host.profile),
            human_bytes(host.profile.memory.total_bytes)
            if host.profile.memory.total_bytes
            else "-",
            str(host.profile.cpu.usable_cores or host.profile.cpu.logical_cores or "-"),
            _assignment(host),
            ",".join(f"{k}={v}" for k, v in sorted(host.labels.items())) or "-",
        ]
        for host in hosts
    ]
    return "\n".join(fit_table(_HOST_HEADERS, rows, _HOST_SHRINK, width=width)) + "\n"


def _state(host: FS.Host) -> str:
    """The state; a READY host whose stream just closed (it is not DOWN until its TTL
    passes) is marked, as it may be restarting, a cordoned host says so, and a running
    drain says how many instances are still to move."""
    word = host_state_name(host.state)
    if host.state == FS.HOST_STATE_READY and not host.connected:
        word = f"{word} (disconnected)"
    if host.cordoned:
        # As kubectl's "Ready,SchedulingDisabled": the state, and that nothing new lands.
        word = f"{word},cordoned"
    if host.drain.state == FS.DRAIN_STATE_RUNNING:
        word = f"{word},draining ({host.drain.remaining} left)"
    return word


def _assignment(host: FS.Host) -> str:
    """`v3` when the host applied what it was sent, `v2 -> v3` while it catches up."""
    if not host.assignment_version:
        return "-"
    if host.applied_assignment_version == host.assignment_version:
        return f"v{host.assignment_version}"
    return f"v{host.applied_assignment_version} -> v{host.assignment_version}"


def candidate_varieties(deployment: deployment_pb2.Deployment) -> str:
    return ",".join(c.variety or "-" for c in deployment.candidates) or "-"


def render_deployments(
    deployments: Sequence[deployment_pb2.Deployment],
    instances: Sequence[FS.Instance],
    now: datetime.datetime,
    width: int = WIDTH,
) -> str:
    """One row per deployment: its service, candidate varieties, how many instances run
    (out of replicas) and how many wait for a host."""
    if not deployments:
        return "No deployments. Declare them in the fleet section and `ozwald apply -f FILE`.\n"
    rows = []
    for deployment in deployments:
        own = [i for i in instances if i.deployment == deployment.name]
        running = sum(1 for i in own if i.state == FS.INSTANCE_STATE_RUNNING)
        pending = sum(1 for i in own if i.state == FS.INSTANCE_STATE_PENDING)
        rows.append(
            [
                deployment.name,
                f"{deployment.realm}:{deployment.service}",
                candidate_varieties(deployment),
                f"{running}/{deployment.replicas}",
                str(pending),
                f"v{deployment.version}",
                age(deployment.updated_at, now),
            ]
        )
    lines = fit_table(_DEPLOYMENT_HEADERS, rows, _DEPLOYMENT_SHRINK, right={4}, width=width)
    return "\n".join(lines) + "\n"


def render_deployment(
    deployment: deployment_pb2.Deployment,
    instances: Sequence[FS.Instance],
    now: datetime.datetime,
    width: int = WIDTH,
) -> str:
    """One deployment: what it runs, where it may go, and each instance."""
    section = Section(f"Deployment {deployment.name}")
    section.add("service", f"{deployment.realm}:{deployment.service}")
    section.add(
        "candidates",
        ", ".join(_candidate(c.variety, c.profile) for c in deployment.candidates) or "-",
    )
    section.add("replicas", str(deployment.replicas))
    section.add("constraints", constraints_text(deployment.constraints))
    section.add("strategy", deployment.strategy or "the orchestrator's default")
    section.add("version", f"v{deployment.version}, stored {iso(deployment.updated_at)}")
    out = section.render(width) + "\n\n"
    return out + render_instances(instances, now, width)


def _candidate(variety: str, profile: str) -> str:
    return (variety or "(no variety)") + (f" [{profile}]" if profile else "")


def constraints_text(constraints: deployment_pb2.PlacementConstraints) -> str:
    parts = []
    if constraints.gpu_vendor:
        parts.append(f"GPU vendor {_VENDOR_WORDS.get(constraints.gpu_vendor, '?')}")
    if constraints.gpu_model:
        parts.append(f"GPU model contains {constraints.gpu_model!r}")
    if constraints.min_vram_bytes:
        parts.append(f"at least {human_bytes(constraints.min_vram_bytes)} VRAM per GPU")
    if constraints.host_labels:
        labels = ",".join(f"{k}={v}" for k, v in sorted(constraints.host_labels.items()))
        parts.append(f"host labels {labels}")
    if constraints.spread_across_hosts:
        parts.append("at most one per host")
    return "; ".join(parts) or "none"


def render_instances(
    instances: Sequence[FS.Instance], now: datetime.datetime, width: int = WIDTH
) -> str:
    """One row per instance: host, variety, state and since when, how often it moved, why.

    A reason cut short in the table is shown whole below it, for instances that are not
    running: that is where the answer to "why is it not running" is.
    """
    if not instances:
        return "No instances.\n"
    rows = [
        [
            i.id,
            i.host_id or "-",
            i.variety or "-",
            instance_state_name(i.state),
            age(i.state_since, now),
            str(i.reschedules),
            i.reason or "-",
        ]
        for i in instances
    ]
    lines = fit_table(_INSTANCE_HEADERS, rows, _INSTANCE_SHRINK, right={5}, width=width)
    out = "\n".join(lines) + "\n"
    cut_short = [
        i
        for i, line in zip(instances, lines[1:], strict=True)
        if i.state != FS.INSTANCE_STATE_RUNNING and i.reason and not line.endswith(i.reason)
    ]
    if cut_short:
        out += "\n"
    for instance in cut_short:
        wrapped = textwrap.wrap(
            f"{instance.id}: {instance.reason}",
            width=width,
            initial_indent=INDENT,
            subsequent_indent=INDENT * 2,
            break_on_hyphens=False,
        )
        out += "\n".join(wrapped) + "\n"
    return out
