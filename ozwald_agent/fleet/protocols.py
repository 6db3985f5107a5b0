"""What the link needs from the rest of the agent, as protocols (the daemon passes the
real Provisioner, FootprintStore and AgentStore; tests may pass their own)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

from ozwald.agent.v1 import footprint_pb2, plan_pb2, service_status_pb2
from ozwald.common.v1 import service_spec_pb2

from ozwald_agent.provisioning.event_feed import EventFeed
from ozwald_agent.provisioning.provisioner import Scope


class FleetProvisioner(Protocol):
    """The provisioner as the link uses it: apply a scope, read statuses and events."""

    feed: EventFeed

    def apply(
        self, services: Sequence[service_spec_pb2.ServiceSpec], scope: Scope
    ) -> tuple[plan_pb2.Plan, int, int]:
        """Atomic: raises AdmissionRefusedError (changing nothing) or stores the set."""
        ...

    def scope_keys(self, scope: Scope) -> set[tuple[str, str]]: ...

    def scope_statuses(
        self, scope: Scope, leaving: Collection[tuple[str, str]] = ()
    ) -> tuple[list[service_status_pb2.InstanceStatus], int]: ...

    def events_after(self, sequence: int) -> list[service_status_pb2.ServiceEvent]: ...


class FootprintSource(Protocol):
    def list(self, *, realm: str = "", service: str = "") -> list[footprint_pb2.Footprint]: ...


class AssignmentVersions(Protocol):
    """Where the version and digest of the last applied assignment are kept across
    restarts."""

    def fleet_assignment(self) -> tuple[int, str]: ...

    def set_fleet_assignment(self, version: int, digest: str) -> None: ...
