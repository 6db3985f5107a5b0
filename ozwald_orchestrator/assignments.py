"""Each host's assignment: its complete set of fleet services, versioned, sent when stored.

A host's assignment is rebuilt from the instances placed on it; its version goes up only
when the set (or a spec in it) changed, so rebuilding twice sends nothing new. An
assignment reaches the agent only after the store has it: an orchestrator killed right
after sending would otherwise restart without the placement the agent is carrying out.
"""

from __future__ import annotations

import logging

from ozwald.orchestrator.v1 import agent_link_service_pb2

from ozwald_orchestrator.events import EventLog
from ozwald_orchestrator.persistence import Persister
from ozwald_orchestrator.state import FleetState, HostRecord
from ozwald_sdk.fingerprint import fingerprint as spec_fingerprint

logger = logging.getLogger(__name__)


class AssignmentBook:
    """Rebuilds, versions and sends host assignments."""

    def __init__(self, state: FleetState, persister: Persister, events: EventLog) -> None:
        self._state = state
        self._persister = persister
        self._events = events
        persister.on_assignments_stored = self.stored

    def rebuild(self, host_id: str) -> bool:
        """Make the host's assignment match the instances placed on it; True when its
        version went up."""
        host = self._state.hosts.get(host_id)
        if host is None:
            return False
        services = [r.spec for r in self._state.instances_on(host_id) if r.spec is not None]
        if list(host.assignment.services) == services:
            return False
        self._replace(host, agent_link_service_pb2.Assignment(services=services))
        return True

    def move_past(self, host: HostRecord, applied_version: int) -> None:
        """The agent applied a version this orchestrator never stored (its store was
        replaced or restored from a backup): continue above it, so the agent takes the
        current set as new."""
        if applied_version < host.assignment.version:
            return
        current = agent_link_service_pb2.Assignment(services=host.assignment.services)
        self._replace(host, current, version=applied_version + 1)

    def _replace(
        self,
        host: HostRecord,
        assignment: agent_link_service_pb2.Assignment,
        version: int | None = None,
    ) -> None:
        assignment.version = version if version is not None else host.assignment.version + 1
        host.assignment = assignment
        host.assignment_fingerprints = {s.name: spec_fingerprint(s) for s in assignment.services}
        host.host.assignment_version = assignment.version
        self._persister.assignment(host.id)
        self._persister.host(host.id)

    def stored(self, versions: dict[str, int]) -> None:
        """The store has these versions: they may now be sent."""
        for host_id, version in versions.items():
            host = self._state.hosts.get(host_id)
            if host is None:
                continue
            host.persisted_version = max(host.persisted_version, version)
            self.send(host)

    def send(self, host: HostRecord, *, again: bool = False, why: str = "") -> bool:
        """Send the host's current assignment down its stream, once it is stored and
        unless this stream already carried it (`again` sends it anyway)."""
        session = host.session
        assignment = host.assignment
        if session is None or session.closed or assignment.version == 0:
            return False
        if assignment.version > host.persisted_version:
            return False
        if host.sent_version == assignment.version and not again:
            return False
        session.send(agent_link_service_pb2.ConnectResponse(assignment=assignment))
        host.sent_version = assignment.version
        count = len(assignment.services)
        self._events.record(
            "assignment-sent",
            f"assignment v{assignment.version} ({count} instance{'s' if count != 1 else ''}) "
            f"sent to {host.id}{f': {why}' if why else ''}",
            host_id=host.id,
        )
        return True
