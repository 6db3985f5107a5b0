"""What the fleet commands share: the FleetClient that --orchestrator and the TLS options
describe, and ages of timestamps for their tables."""

from __future__ import annotations

import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from ozwald_sdk.cli.command import Invocation
from ozwald_sdk.orchestrator_client import FleetClient
from ozwald_sdk.target import resolve_orchestrator_target


def fleet_client(invocation: Invocation) -> FleetClient:
    """A client for the orchestrator named by --orchestrator / OZWALD_ORCHESTRATOR (else its
    default socket), with --timeout and the TLS options."""
    args = invocation.args
    target = resolve_orchestrator_target(
        args.orchestrator, tls_ca=args.tls_ca, tls_cert=args.tls_cert, tls_key=args.tls_key
    )
    return FleetClient(target, timeout=args.timeout)


def age(stamp: Timestamp, now: datetime.datetime) -> str:
    """How long ago `stamp` was: `42s`, `5m`, `3h`, `2d`; `-` when it is not set."""
    if not stamp.seconds and not stamp.nanos:
        return "-"
    seconds = max(0, int((now - stamp.ToDatetime(tzinfo=datetime.UTC)).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def iso(stamp: Timestamp) -> str:
    """`2026-11-27T10:01:02Z`; `-` when not set."""
    if not stamp.seconds and not stamp.nanos:
        return "-"
    return f"{stamp.ToDatetime(tzinfo=datetime.UTC):%Y-%m-%dT%H:%M:%SZ}"
