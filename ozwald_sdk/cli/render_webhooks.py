"""The delivery log as a table for people."""

from __future__ import annotations

from collections.abc import Sequence

from ozwald.agent.v1 import webhook_delivery_pb2 as W
from ozwald.common.v1 import webhook_pb2

from ozwald_sdk.cli.text import INDENT, WIDTH, render_table

_HEADERS = ("TIME (UTC)", "HOOK", "EVENT", "SERVICE", "TRY", "HTTP", "TOOK", "OUTCOME", "ERROR")
_RIGHT = (4, 5, 6)


def event_name(event: webhook_pb2.WebhookEvent.ValueType) -> str:
    if event == webhook_pb2.WEBHOOK_EVENT_UNSPECIFIED:
        return "?"
    return (
        webhook_pb2.WebhookEvent.Name(event)
        .removeprefix("WEBHOOK_EVENT_")
        .lower()
        .replace("_", "-")
    )


def outcome_name(outcome: W.WebhookDeliveryOutcome.ValueType) -> str:
    if outcome == W.WEBHOOK_DELIVERY_OUTCOME_UNSPECIFIED:
        return "?"
    name = W.WebhookDeliveryOutcome.Name(outcome).removeprefix("WEBHOOK_DELIVERY_OUTCOME_")
    return name.lower().replace("_", "-")


def render_deliveries(deliveries: Sequence[W.WebhookDelivery], width: int = WIDTH) -> str:
    if not deliveries:
        return (
            "No webhook deliveries recorded. Services subscribe to webhooks with "
            "`webhooks: [NAME]` (see docs/webhooks.md).\n"
        )
    rows = [
        (
            f"{d.attempted_at.ToDatetime():%Y-%m-%d %H:%M:%S}",
            d.hook,
            event_name(d.event),
            f"{d.realm}:{d.service}",
            str(d.attempt),
            str(d.status_code) if d.status_code else "-",
            f"{d.duration.ToTimedelta().total_seconds():.2f}s",
            outcome_name(d.outcome),
            d.error or "-",
        )
        for d in deliveries
    ]
    lines = render_table(_HEADERS, rows, shrink=len(_HEADERS) - 1, right=_RIGHT, width=width)
    return "\n".join(lines) + "\n"


__all__ = ["INDENT", "event_name", "outcome_name", "render_deliveries"]
