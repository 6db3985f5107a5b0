"""`ozwald drift` as text: each place where what a host runs differs from what it is
assigned, how long it has been so, and in what way."""

from __future__ import annotations

from collections.abc import Sequence

from ozwald.orchestrator.v1.fleet_service_pb2 import DriftItem, DriftKind

from ozwald_sdk.cli.render_services import fit_table
from ozwald_sdk.cli.text import WIDTH

_HEADERS = ("KIND", "HOST", "INSTANCE", "FOR", "DETAIL")
_SHRINK = ((4, 16), (2, 12), (1, 10), (4, 0))


def drift_kind_name(kind: DriftKind.ValueType) -> str:
    return DriftKind.Name(kind).removeprefix("DRIFT_KIND_").lower().replace("_", "-")


def seconds_text(seconds: float) -> str:
    whole = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole >= size:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def render_drift(items: Sequence[DriftItem], width: int = WIDTH) -> str:
    if not items:
        return "No drift: every host runs exactly what it is assigned.\n"
    rows = [
        [
            drift_kind_name(item.kind),
            item.host_id or "-",
            item.instance or "-",
            seconds_text(item.age_seconds),
            item.detail or "-",
        ]
        for item in items
    ]
    lines = fit_table(_HEADERS, rows, _SHRINK, width=width)
    count = len(items)
    tail = (
        f"\n{count} difference{'s' if count != 1 else ''}. The orchestrator converges them on "
        "its own (it sends each host its assignment again); one that stays says what stops it.\n"
    )
    return "\n".join(lines) + "\n" + tail
