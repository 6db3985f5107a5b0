"""The JSON document every delivery carries (schema "ozwald.webhook.v1").

Stable: fields are added, never renamed or retyped; a receiver ignores what it does not
know. docs/webhooks.md is the reference.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any

from ozwald.agent.v1 import service_status_pb2
from ozwald.common.v1 import service_spec_pb2

from ozwald_sdk.webhooks import SCHEMA


def state_name(state: service_status_pb2.InstanceState.ValueType) -> str:
    """e.g. "READY"; "" for none (a service that does not exist yet)."""
    if state == service_status_pb2.INSTANCE_STATE_UNSPECIFIED:
        return ""
    return service_status_pb2.InstanceState.Name(state).removeprefix("INSTANCE_STATE_")


@dataclass(frozen=True)
class EventFacts:
    """What a delivery says about the service, besides the hook and the delivery itself."""

    event: str
    spec: service_spec_pb2.ServiceSpec
    state: service_status_pb2.InstanceState.ValueType
    previous_state: service_status_pb2.InstanceState.ValueType
    reason: str
    generation: int
    container_id: str
    action: str = ""
    """Pre-events: start, restart or stop."""
    fingerprint: str = ""


def document(
    facts: EventFacts, *, hook: str, delivery_id: str, host: str, attempt: int, at: float
) -> dict[str, Any]:
    spec = facts.spec
    return {
        "schema": SCHEMA,
        "event": facts.event,
        "delivery_id": delivery_id,
        "attempt": attempt,
        "timestamp": datetime.datetime.fromtimestamp(at, datetime.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "hook": hook,
        "host": host,
        "realm": spec.realm,
        "service": spec.name,
        "variety": spec.variety or None,
        "profile": spec.profile or None,
        "action": facts.action or None,
        "state": state_name(facts.state) or None,
        "previous_state": state_name(facts.previous_state) or None,
        "reason": facts.reason,
        "generation": facts.generation,
        "container_id": facts.container_id or None,
        "fingerprint": facts.fingerprint or None,
        "image": spec.image,
    }


def body(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
