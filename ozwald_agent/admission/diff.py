"""The diff between the desired dynamic services and what runs: start, stop, restart, keep.

The desired set is complete for dynamic services: a running dynamic service missing from
it stops. A desired service whose fingerprint equals the recorded one is kept, any other
difference restarts it. Persistent services are always kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ozwald.agent.v1 import plan_pb2
from ozwald.common.v1 import service_spec_pb2

from ozwald_agent.admission.keys import ServiceKey, key_of
from ozwald_agent.admission.running import RunningService
from ozwald_sdk.fingerprint import fingerprint

START = plan_pb2.ACTION_KIND_START
STOP = plan_pb2.ACTION_KIND_STOP
RESTART = plan_pb2.ACTION_KIND_RESTART
KEEP = plan_pb2.ACTION_KIND_KEEP


@dataclass(frozen=True)
class Change:
    """What happens to one service, before admission."""

    kind: plan_pb2.ActionKind.ValueType
    key: ServiceKey
    # The spec it will run: the desired one, or the running one of a persistent service;
    # None for STOP.
    spec: service_spec_pb2.ServiceSpec | None
    running: RunningService | None
    reason: str
    changed_fields: tuple[str, ...] = ()
    fingerprint: str = ""

    @property
    def arrives(self) -> bool:
        """A new instance starts: it must be admitted."""
        return self.kind in (START, RESTART)

    @property
    def leaves(self) -> bool:
        """The running instance stops: its resources come back."""
        return self.kind in (STOP, RESTART)


def diff(
    desired: Sequence[service_spec_pb2.ServiceSpec], running: Sequence[RunningService]
) -> list[Change]:
    """One change per service, sorted by key. `desired` holds one spec per key."""
    now: dict[ServiceKey, RunningService] = {}
    for service in running:
        now.setdefault(service.key, service)
    changes: list[Change] = []
    wanted: set[ServiceKey] = set()
    for spec in desired:
        key = key_of(spec)
        wanted.add(key)
        changes.append(_change(key, spec, now.get(key)))
    for key, service in now.items():
        if service.persistent and key not in wanted:
            changes.append(
                Change(
                    KEEP,
                    key,
                    service.spec,
                    service,
                    f"{service.held_as()}: updates never change it",
                    fingerprint=service.fingerprint,
                )
            )
        elif key not in wanted:
            changes.append(Change(STOP, key, None, service, "no longer desired"))
    return sorted(changes, key=lambda c: c.key)


def _change(
    key: ServiceKey, spec: service_spec_pb2.ServiceSpec, running: RunningService | None
) -> Change:
    wanted = fingerprint(spec)
    if running is None:
        return Change(START, key, spec, None, "new service", fingerprint=wanted)
    if running.fingerprint == wanted:
        return Change(KEEP, key, spec, running, "unchanged", fingerprint=wanted)
    fields = changed_fields(running.spec, spec)
    reason = (
        f"effective spec changed: {', '.join(fields)}"
        if fields
        else "fingerprint differs from the recorded one (no field of the spec differs)"
    )
    return Change(RESTART, key, spec, running, reason, fields, wanted)


def changed_fields(
    old: service_spec_pb2.ServiceSpec, new: service_spec_pb2.ServiceSpec
) -> tuple[str, ...]:
    """Names of the top-level ServiceSpec fields whose values differ, in .proto order."""
    return tuple(
        f.name
        for f in service_spec_pb2.ServiceSpec.DESCRIPTOR.fields
        if getattr(old, f.name) != getattr(new, f.name)
    )
