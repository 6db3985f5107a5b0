"""What goes up the stream: the agent's ConnectRequests, built from its own state. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from google.protobuf.timestamp_pb2 import Timestamp
from ozwald.agent.v1 import footprint_pb2, service_status_pb2
from ozwald.common.v1 import host_profile_pb2
from ozwald.orchestrator.v1 import agent_link_service_pb2 as link_pb2

S = service_status_pb2
ServiceKey = tuple[str, str]
FootprintKey = tuple[str, str, str, str]


def register(
    *,
    host_id: str,
    profile: host_profile_pb2.HostProfile,
    labels: Mapping[str, str],
    applied_version: int,
    instances: Sequence[S.InstanceStatus],
    footprints: Sequence[footprint_pb2.Footprint],
) -> link_pb2.ConnectRequest:
    return link_pb2.ConnectRequest(
        register=link_pb2.Register(
            host_id=host_id,
            profile=profile,
            labels=dict(labels),
            applied_assignment_version=applied_version,
            instances=instances,
            footprints=footprints,
        )
    )


def heartbeat(sequence: int) -> link_pb2.ConnectRequest:
    sent_at = Timestamp()
    sent_at.GetCurrentTime()
    return link_pb2.ConnectRequest(heartbeat=link_pb2.Heartbeat(sequence=sequence, sent_at=sent_at))


def profile_report(profile: host_profile_pb2.HostProfile) -> link_pb2.ConnectRequest:
    return link_pb2.ConnectRequest(profile=link_pb2.ProfileReport(profile=profile))


def footprint_report(
    footprints: Sequence[footprint_pb2.Footprint],
) -> link_pb2.ConnectRequest:
    return link_pb2.ConnectRequest(footprints=link_pb2.FootprintReport(footprints=footprints))


def assignment_result(result: link_pb2.AssignmentResult) -> link_pb2.ConnectRequest:
    return link_pb2.ConnectRequest(assignment_result=result)


@dataclass
class InstanceChanges:
    """A batch of status changes of fleet instances, each instance once (its latest)."""

    statuses: dict[ServiceKey, S.InstanceStatus] = field(default_factory=dict)
    removed: dict[ServiceKey, None] = field(default_factory=dict)
    observed_at: Timestamp | None = None

    def __bool__(self) -> bool:
        return bool(self.statuses or self.removed)

    def request(self) -> link_pb2.ConnectRequest:
        report = link_pb2.InstanceReport(
            instances=list(self.statuses.values()), removed=[name for _, name in self.removed]
        )
        if self.observed_at is not None:
            report.observed_at.CopyFrom(self.observed_at)
        return link_pb2.ConnectRequest(instances=report)


def fleet_changes(
    events: Iterable[S.ServiceEvent],
    fleet: set[ServiceKey],
    reported: set[ServiceKey],
    into: InstanceChanges | None = None,
) -> InstanceChanges:
    """The changes among `events` that concern fleet instances, collapsed per instance.

    An event is a fleet instance's when its service is in the FLEET set now (`fleet`) or
    was reported to the orchestrator before (`reported`): a service that has just left
    the set still sends its last steps (STOPPING), and its STOPPED becomes `removed`.
    `reported` is updated as the changes are taken: the caller sends what this returns.
    """
    changes = into if into is not None else InstanceChanges()
    for event in events:
        status = event.status
        key = (status.realm, status.name)
        if key not in fleet and key not in reported:
            continue
        if changes.observed_at is None:
            changes.observed_at = Timestamp()
            changes.observed_at.CopyFrom(event.time)
        if status.state == S.INSTANCE_STATE_STOPPED and key not in fleet:
            changes.statuses.pop(key, None)
            changes.removed[key] = None
            reported.discard(key)
            continue
        changes.removed.pop(key, None)
        # Re-inserted so that the batch keeps the order in which instances last changed.
        changes.statuses.pop(key, None)
        changes.statuses[key] = status
        reported.add(key)
    return changes


def new_footprints(
    footprints: Iterable[footprint_pb2.Footprint], sent: dict[FootprintKey, tuple[str, int]]
) -> list[footprint_pb2.Footprint]:
    """The footprints not sent yet, or measured again since; `sent` is updated."""
    fresh = []
    for footprint in footprints:
        key = (footprint.realm, footprint.service, footprint.variety, footprint.profile)
        stamp = (footprint.fingerprint, footprint.measured_at.ToNanoseconds())
        if sent.get(key) != stamp:
            sent[key] = stamp
            fresh.append(footprint)
    return fresh


def footprint_stamps(
    footprints: Iterable[footprint_pb2.Footprint],
) -> dict[FootprintKey, tuple[str, int]]:
    """What `new_footprints` compares against, for footprints sent in a Register."""
    stamps: dict[FootprintKey, tuple[str, int]] = {}
    new_footprints(footprints, stamps)
    return stamps
