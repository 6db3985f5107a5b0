"""Fleet events as text: one line each, in order, with what they concern."""

from __future__ import annotations

from ozwald.orchestrator.v1.fleet_state_pb2 import FleetEvent

from ozwald_sdk.cli.fleet_options import iso


def event_line(event: FleetEvent) -> str:
    """`#12 2026-11-27T10:01:02Z instance-placed embed/embed-0 @h1: placed on h1 ...`"""
    subject = "/".join(part for part in (event.deployment, event.instance) if part)
    if event.host_id:
        subject += f" @{event.host_id}"
    parts = [f"#{event.sequence}", iso(event.time), event.kind or "event"]
    if subject:
        parts.append(subject.strip())
    return " ".join(parts) + (f": {event.message}" if event.message else "")
