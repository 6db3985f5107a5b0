"""Footprints and profiling progress as text for people.

The footprint table has one row per realm, service, variety and profile: time to ready,
peak memory (with `*` when it was sampled rather than the kernel's own peak), CPU peak
and mean, peak VRAM per GPU, the warm-up, and when it was measured. Progress lines say
which service, which step, and what happens in it.
"""

from __future__ import annotations

import datetime
import textwrap
from collections.abc import Sequence

from google.protobuf import duration_pb2
from ozwald.agent.v1 import agent_service_pb2, footprint_pb2
from ozwald.common.v1 import service_spec_pb2

from ozwald_sdk.cli.text import INDENT, WIDTH, human_bytes, render_table

pb = agent_service_pb2
F = footprint_pb2

_HEADERS = ("SERVICE", "VARIETY/PROFILE", "READY", "PEAK MEM", "CPU MAX/AVG", "VRAM/GPU", "WARM-UP")
_RIGHT = (2, 3, 4, 5)
_VRAM = 5
PHASE_WORDS = {
    pb.PROFILE_PHASE_ADMITTING: "admitting",
    pb.PROFILE_PHASE_STARTING: "starting",
    pb.PROFILE_PHASE_WAITING_FOR_READY: "waiting for ready",
    pb.PROFILE_PHASE_WARMING_UP: "warming up",
    pb.PROFILE_PHASE_STOPPING: "stopping",
    pb.PROFILE_PHASE_DONE: "done",
    pb.PROFILE_PHASE_FAILED: "FAILED",
}
API_WORDS = {
    service_spec_pb2.OPEN_AI_API_EMBEDDINGS: "embeddings",
    service_spec_pb2.OPEN_AI_API_COMPLETIONS: "completions",
    service_spec_pb2.OPEN_AI_API_CHAT: "chat",
}
BAR_WIDTH = 20


def selector(realm: str, name: str, variety: str, profile: str) -> str:
    """`default:embed[cpu][fast]`: the selector naming exactly this combination."""
    text = f"{realm}:{name}"
    if variety or profile:
        text += f"[{variety}]"
    if profile:
        text += f"[{profile}]"
    return text


def footprint_selector(footprint: F.Footprint) -> str:
    return selector(footprint.realm, footprint.service, footprint.variety, footprint.profile)


def seconds(duration: duration_pb2.Duration) -> float:
    return duration.seconds + duration.nanos / 1e9


def memory_cell(footprint: F.Footprint) -> str:
    if not footprint.peak_memory_bytes:
        return "-"
    sampled = footprint.memory_peak_source == F.MEMORY_PEAK_SOURCE_SAMPLED_USAGE
    return human_bytes(footprint.peak_memory_bytes) + ("*" if sampled else "")


def vram_cell(footprint: F.Footprint) -> str:
    if not footprint.HasField("peak_vram_bytes_per_gpu"):
        return "-"
    return human_bytes(footprint.peak_vram_bytes_per_gpu)


def warm_up_cell(warm: F.WarmUp) -> str:
    if not warm.requests:
        return "none"
    api = API_WORDS.get(warm.api, "?")
    failed = f" ({warm.errors} failed)" if warm.errors else ""
    return f"{warm.requests} {api}{failed}"


def render_footprints(
    footprints: Sequence[F.Footprint], now: datetime.datetime, width: int = WIDTH
) -> str:
    """The table, then what people need to read it."""
    if not footprints:
        return "No footprints stored on this host; `ozwald profile SPEC` measures one.\n"
    rows = [
        [
            f"{f.realm}:{f.service}",
            "/".join((f.variety or "-", f.profile or "-")),
            f"{seconds(f.time_to_ready):.1f}s",
            memory_cell(f),
            f"{f.peak_cpu_cores:.2f}/{f.mean_cpu_cores:.2f}",
            vram_cell(f),
            warm_up_cell(f.warm_up),
        ]
        for f in footprints
    ]
    headers: Sequence[str] = _HEADERS
    if not any(f.HasField("peak_vram_bytes_per_gpu") for f in footprints):
        # No GPU measured: the column would be all dashes; the room goes to the warm-up.
        headers = _HEADERS[:_VRAM] + _HEADERS[_VRAM + 1 :]
        rows = [row[:_VRAM] + row[_VRAM + 1 :] for row in rows]
    lines = render_table(headers, rows, shrink=len(headers) - 1, right=_RIGHT, width=width)
    lines.append("")
    for footprint in footprints:
        lines.extend(
            _wrapped(
                f"{footprint_selector(footprint)}: measured {_ago(footprint, now)} on "
                f"{footprint.host.hostname or 'an unnamed host'}, spec "
                f"{footprint.fingerprint[:12]}",
                width,
            )
        )
        for note in footprint.notes:
            lines.extend(_wrapped(f"note: {note}", width, INDENT))
        if footprint.warm_up.last_error:
            lines.extend(_wrapped(f"warm-up: {footprint.warm_up.last_error}", width, INDENT))
    if any(f.memory_peak_source == F.MEMORY_PEAK_SOURCE_SAMPLED_USAGE for f in footprints):
        lines.append("")
        lines.extend(
            _wrapped(
                "* sampled every 0.5 s: the kernel gave no peak of its own, so a short spike "
                "may be missed",
                width,
            )
        )
    return "\n".join(lines) + "\n"


def progress_text(message: pb.ProfileServicesResponse) -> str:
    """`[1/3] default:embed[cpu]  waiting for ready (12.3s): GET /health ...: HTTP 503`."""
    name = selector(message.service.realm, message.service.name, message.variety, message.profile)
    phase = PHASE_WORDS.get(message.phase, "?")
    head = f"[{message.index}/{message.total}] {name}  {phase} ({seconds(message.elapsed):.1f}s)"
    if message.phase == pb.PROFILE_PHASE_WARMING_UP and message.warmup_total:
        done = message.warmup_done * BAR_WIDTH // message.warmup_total
        bar = "#" * done + "." * (BAR_WIDTH - done)
        return f"{head} [{bar}] {message.detail}"
    if message.phase == pb.PROFILE_PHASE_DONE and message.HasField("footprint"):
        f = message.footprint
        return f"{head}: ready in {seconds(f.time_to_ready):.1f}s, peak memory {memory_cell(f)}"
    return f"{head}: {message.detail}" if message.detail else head


def _wrapped(text: str, width: int, extra: str = "") -> list[str]:
    return textwrap.wrap(
        text,
        width=width,
        initial_indent=INDENT + extra,
        subsequent_indent=INDENT * 3 + extra,
        break_on_hyphens=False,
    )


def _ago(footprint: F.Footprint, now: datetime.datetime) -> str:
    if not footprint.HasField("measured_at"):
        return "at an unknown time"
    when = footprint.measured_at.ToDatetime(tzinfo=datetime.UTC)
    seconds_ago = max(0, int((now - when).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds_ago >= size:
            return f"{seconds_ago // size}{unit} ago ({when:%Y-%m-%d %H:%M} UTC)"
    return f"{seconds_ago}s ago ({when:%Y-%m-%d %H:%M} UTC)"
