"""Drift: where what an agent reports differs from what it is assigned.

The agent reports its fleet instances when it registers and whenever one changes;
each status carries the fingerprint of the spec it runs. Against the host's assignment
that gives four kinds of difference. Some are normal for a moment (an assignment just
sent, an instance being created), so each is timed from when it was first seen, and
the orchestrator acts only on those older than the grace: it sends the assignment
again, which the agent applies idempotently (it stops what is unexpected, starts what
is missing, replaces what differs).
"""

from __future__ import annotations

from dataclasses import dataclass

from ozwald.agent.v1 import service_status_pb2
from ozwald.common.v1 import service_spec_pb2
from ozwald.orchestrator.v1 import fleet_service_pb2

from ozwald_orchestrator.assignments import AssignmentBook
from ozwald_orchestrator.clock import Clock
from ozwald_orchestrator.events import EventLog
from ozwald_orchestrator.state import READY, FleetState, HostRecord
from ozwald_sdk.fingerprint import fingerprint as spec_fingerprint

UNEXPECTED = fleet_service_pb2.DRIFT_KIND_UNEXPECTED
MISSING = fleet_service_pb2.DRIFT_KIND_MISSING
SPEC_MISMATCH = fleet_service_pb2.DRIFT_KIND_SPEC_MISMATCH
ASSIGNMENT_BEHIND = fleet_service_pb2.DRIFT_KIND_ASSIGNMENT_BEHIND

_GONE = (
    service_status_pb2.INSTANCE_STATE_STOPPING,
    service_status_pb2.INSTANCE_STATE_STOPPED,
)


@dataclass(frozen=True)
class Difference:
    kind: fleet_service_pb2.DriftKind.ValueType
    instance: str
    detail: str


def host_differences(host: HostRecord) -> list[Difference]:
    """What differs on one host now (untimed)."""
    assignment = host.assignment
    applied = host.host.applied_assignment_version
    found: list[Difference] = []
    if applied != assignment.version:
        found.append(
            Difference(
                ASSIGNMENT_BEHIND,
                "",
                f"assignment v{assignment.version} sent, the agent has applied v{applied}",
            )
        )
    assigned = {spec.name: spec for spec in assignment.services}
    running = {name: status for name, status in host.observed.items() if status.state not in _GONE}
    for name in sorted(running.keys() - assigned.keys()):
        status = running[name]
        found.append(
            Difference(
                UNEXPECTED,
                name,
                f"runs {name} ({_state_word(status)}), which is not assigned to it",
            )
        )
    if applied != assignment.version:
        # Until the agent has the current set, missing and different specs are expected.
        return found
    for name in sorted(assigned.keys() - running.keys()):
        found.append(
            Difference(MISSING, name, f"{name} is assigned and the agent reports no such instance")
        )
    for name in sorted(assigned.keys() & running.keys()):
        expected = expected_fingerprint(host, name, assigned[name])
        reported = running[name].fingerprint
        if reported and reported != expected:
            found.append(
                Difference(
                    SPEC_MISMATCH,
                    name,
                    f"{name} runs spec {reported[:12]}, assigned {expected[:12]}",
                )
            )
    return found


def expected_fingerprint(host: HostRecord, name: str, spec: service_spec_pb2.ServiceSpec) -> str:
    """The fingerprint the agent should report: the one its admission gave the spec
    (it pins secret and volume revisions into it) when known, else the spec's own."""
    if host.admitted_version == host.assignment.version:
        admitted = host.admitted_fingerprints.get(name)
        if admitted:
            return admitted
    known = host.assignment_fingerprints.get(name)
    return known if known is not None else spec_fingerprint(spec)


def _state_word(status: service_status_pb2.InstanceStatus) -> str:
    return (
        service_status_pb2.InstanceState.Name(status.state).removeprefix("INSTANCE_STATE_").lower()
    )


def timed(
    host: HostRecord, differences: list[Difference], now: float
) -> list[tuple[Difference, float]]:
    """Each difference with its age in seconds; forgets those that went away."""
    keys = {(d.kind, d.instance) for d in differences}
    for key in list(host.drift_since):
        if key not in keys:
            del host.drift_since[key]
    result: list[tuple[Difference, float]] = []
    for difference in differences:
        since = host.drift_since.setdefault((difference.kind, difference.instance), now)
        result.append((difference, now - since))
    return result


class DriftCache:
    """Remembers each host's differences until something they depend on changes, so a
    periodic check of thousands of quiet hosts costs a tuple comparison each."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[tuple[int, int, int, int], list[Difference]]] = {}

    def differences(self, host: HostRecord) -> list[Difference]:
        key = (
            host.assignment.version,
            host.host.applied_assignment_version,
            host.admitted_version,
            host.observed_revision,
        )
        known = self._known.get(host.id)
        if known is not None and known[0] == key:
            return known[1]
        found = host_differences(host)
        self._known[host.id] = (key, found)
        return found


class DriftMonitor:
    """Reports drift with its age and corrects what outlived the grace."""

    def __init__(
        self,
        state: FleetState,
        assignments: AssignmentBook,
        events: EventLog,
        clock: Clock,
        grace_s: float,
    ) -> None:
        self._state = state
        self._assignments = assignments
        self._events = events
        self._clock = clock
        self._grace_s = grace_s
        self._cache = DriftCache()

    def items(self) -> list[fleet_service_pb2.DriftItem]:
        """Every difference on a connected host now, by host."""
        now = self._clock.monotonic()
        items: list[fleet_service_pb2.DriftItem] = []
        for host_id in sorted(self._state.hosts):
            host = self._state.hosts[host_id]
            if host.session is None:
                continue
            for difference, age in timed(host, self._cache.differences(host), now):
                items.append(
                    fleet_service_pb2.DriftItem(
                        kind=difference.kind,
                        host_id=host_id,
                        instance=difference.instance,
                        detail=difference.detail,
                        age_seconds=round(age, 3),
                    )
                )
        return items

    def correct(self) -> None:
        """Send the assignment again to hosts whose drift outlived the grace, at most once
        per grace per host."""
        now = self._clock.monotonic()
        grace = self._grace_s
        for host in self._state.hosts.values():
            if host.session is None or host.host.state != READY:
                host.drift_since.clear()
                continue
            differences = timed(host, self._cache.differences(host), now)
            overdue = [d for d, age in differences if age >= grace]
            if not overdue or now - host.drift_resent_at < grace:
                continue
            host.drift_resent_at = now
            words = "; ".join(d.detail for d in overdue)
            if self._assignments.send(host, again=True, why="drift"):
                self._events.record(
                    "drift-corrected",
                    f"sent assignment v{host.assignment.version} to {host.id} again: {words}",
                    host_id=host.id,
                )
