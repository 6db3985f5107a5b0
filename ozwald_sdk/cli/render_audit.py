"""Audit records and verification results as text for people."""

from __future__ import annotations

import datetime
import json
from typing import Any

from ozwald.orchestrator.v1.audit_service_pb2 import AuditRecord, VerifyAuditLogResponse

from ozwald_sdk.audit_chain import parse_state

# A line shows at most this many changed fields, each value cut to this many characters.
MAX_CHANGES = 6
MAX_VALUE = 40
_MISSING = object()


def record_line(record: AuditRecord) -> str:
    """`#12 2026-11-27T10:01:02.123Z operator:alice deployment-updated embed: replicas 2 -> 3`"""
    moment = record.time.ToDatetime(tzinfo=datetime.UTC)
    when = f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"
    subject = "/".join(part for part in (record.deployment, record.instance) if part)
    if record.host_id:
        subject = f"{subject} @{record.host_id}".strip()
    parts = [f"#{record.sequence}", when, record.actor, record.kind]
    if subject:
        parts.append(subject)
    change = describe_change(record.before_json, record.after_json)
    return " ".join(parts) + (f": {change}" if change else "")


def describe_change(before_json: str, after_json: str) -> str:
    """What changed between two states, briefly: `state RUNNING -> FAILED, reason "" -> "oom"`."""
    try:
        before, after = parse_state(before_json), parse_state(after_json)
    except ValueError:
        return "(state is not JSON)"
    if before is None and after is None:
        return ""
    if before is None:
        return "created"
    if after is None:
        return "deleted"
    changes = [
        f"{path} {_short(old)} -> {_short(new)}"
        for path, old, new in _differences("", before, after)
    ]
    if not changes:
        return "no change"
    shown = ", ".join(changes[:MAX_CHANGES])
    more = len(changes) - MAX_CHANGES
    return shown + (f" (+{more} more)" if more > 0 else "")


def _differences(path: str, before: Any, after: Any) -> list[tuple[str, Any, Any]]:
    if isinstance(before, dict) and isinstance(after, dict):
        found: list[tuple[str, Any, Any]] = []
        for key in sorted(before.keys() | after.keys()):
            inner = f"{path}.{key}" if path else str(key)
            found.extend(_differences(inner, before.get(key, _MISSING), after.get(key, _MISSING)))
        return found
    if before == after:
        return []
    return [(path or "value", before, after)]


def _short(value: Any) -> str:
    if value is _MISSING:
        return "(none)"
    text = value if isinstance(value, str) and value.isidentifier() else json.dumps(value)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 3] + "..."


def verification_text(result: VerifyAuditLogResponse, *, source: str) -> str:
    """What `ozwald audit verify` prints when the chain is intact."""
    lines = [
        f"{source} intact: {result.records_checked} records checked, "
        f"head #{result.head_sequence} {result.head_hash}"
    ]
    if result.checkpoint_sequence:
        lines.append(f"head checkpoint at record {result.checkpoint_sequence} matches")
    if result.head_sequence:
        lines.append(
            "keep the head somewhere else and check against it later: "
            f"ozwald audit verify --anchor {result.head_sequence}:{result.head_hash}"
        )
    return "\n".join(lines) + "\n"
