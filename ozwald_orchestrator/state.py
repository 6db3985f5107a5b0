"""The fleet as the running orchestrator holds it in memory: the source of truth.

Every RPC reads from here and every change is made here first, then written to the
store (`persistence.Persister`). Heartbeats touch only `HostRecord.last_seen`: O(1),
no message rebuilt, no write of their own.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ozwald.agent.v1 import footprint_pb2, service_status_pb2
from ozwald.common.v1 import service_spec_pb2
from ozwald.orchestrator.v1 import agent_link_service_pb2, deployment_pb2, fleet_state_pb2

from ozwald_orchestrator.store.protocol import GpuHold

if TYPE_CHECKING:
    from ozwald_orchestrator.placement.model import Demand
    from ozwald_orchestrator.sessions import AgentSession

NO_GPUS = GpuHold(0, ())

READY = fleet_state_pb2.HOST_STATE_READY
DOWN = fleet_state_pb2.HOST_STATE_DOWN
LOST = fleet_state_pb2.HOST_STATE_LOST


@dataclass
class HostRecord:
    """One host that joined the fleet."""

    # Everything but `last_seen`, which is kept below and filled in when shown.
    host: fleet_state_pb2.Host
    last_seen: float
    last_seen_wall: datetime.datetime
    # The complete set of fleet services the host should run, and its version.
    assignment: agent_link_service_pb2.Assignment = field(
        default_factory=agent_link_service_pb2.Assignment
    )
    # The fingerprint of each assigned spec, by service name (computed once per version).
    assignment_fingerprints: dict[str, str] = field(default_factory=dict)
    # The newest assignment version the store has: nothing newer is ever sent, so a
    # crash cannot leave an agent running a placement the orchestrator forgot.
    persisted_version: int = 0
    # The version last sent on the current stream (0: nothing on this stream yet).
    sent_version: int = 0
    # What the agent reports running: its fleet instances by service name.
    observed: dict[str, service_status_pb2.InstanceStatus] = field(default_factory=dict)
    # Goes up with every change of `observed`, so drift is recomputed only then.
    observed_revision: int = 0
    # When last_seen was last marked for the store (monotonic): it is written at most
    # every few seconds per host, not on every heartbeat.
    last_seen_marked: float = 0.0
    # Fingerprints of the specs the agent admitted for `admitted_version`; the agent
    # pins secret and volume revisions into a spec, so its fingerprint can differ from
    # the orchestrator's own for the same assignment.
    admitted_version: int = 0
    admitted_fingerprints: dict[str, str] = field(default_factory=dict)
    # When each drift item on this host was first seen (monotonic), by (kind, instance).
    drift_since: dict[tuple[int, str], float] = field(default_factory=dict)
    # When the assignment was last re-sent to correct drift (monotonic).
    drift_resent_at: float = 0.0
    session: AgentSession | None = None

    @property
    def id(self) -> str:
        return self.host.id

    @property
    def state(self) -> fleet_state_pb2.HostState.ValueType:
        return self.host.state

    def snapshot(self) -> fleet_state_pb2.Host:
        shown = fleet_state_pb2.Host()
        shown.CopyFrom(self.host)
        shown.last_seen.FromDatetime(self.last_seen_wall)
        return shown


@dataclass
class InstanceRecord:
    """One instance of a deployment and the orchestrator's bookkeeping for it."""

    instance: fleet_state_pb2.Instance
    # The spec it runs on its host (the chosen candidate, named by the instance id);
    # None while pending.
    spec: service_spec_pb2.ServiceSpec | None = None
    demand: Demand | None = None
    # What the ledger reserved for it on its host (vendor and indices of its GPUs).
    gpus: GpuHold = NO_GPUS
    # Consecutive failures (refusals, agents giving up): the backoff's exponent.
    failures: int = 0
    # Not placed again before this (monotonic).
    next_attempt: float = 0.0
    # Hosts that refused or failed it; placement avoids them while others fit.
    avoid_hosts: set[str] = field(default_factory=set)
    # The deployment's constraints it was placed under (serialized): a change of them
    # places it again, a change of the replica count does not.
    constraints_key: bytes = b""
    # Set when it lost its host (host lost, instance failed): its next placement counts
    # as a reschedule.
    rescheduling: bool = False

    @property
    def id(self) -> str:
        return self.instance.id

    @property
    def host_id(self) -> str:
        return self.instance.host_id


@dataclass
class FleetState:
    """Deployments, instances, hosts and footprints, with the indexes the logic needs."""

    desired_version: int = 0
    deployments: dict[str, deployment_pb2.Deployment] = field(default_factory=dict)
    # The highest version each deployment name ever had (removed ones included).
    deployment_versions: dict[str, int] = field(default_factory=dict)
    instances: dict[str, InstanceRecord] = field(default_factory=dict)
    hosts: dict[str, HostRecord] = field(default_factory=dict)
    # Newest footprint per spec fingerprint.
    footprints: dict[str, footprint_pb2.Footprint] = field(default_factory=dict)
    _by_host: dict[str, set[str]] = field(default_factory=dict)
    _by_deployment: dict[str, set[str]] = field(default_factory=dict)

    def add_instance(self, record: InstanceRecord) -> None:
        self.instances[record.id] = record
        self._by_deployment.setdefault(record.instance.deployment, set()).add(record.id)
        if record.host_id:
            self._by_host.setdefault(record.host_id, set()).add(record.id)

    def remove_instance(self, instance_id: str) -> InstanceRecord | None:
        record = self.instances.pop(instance_id, None)
        if record is None:
            return None
        self._discard(self._by_deployment, record.instance.deployment, instance_id)
        if record.host_id:
            self._discard(self._by_host, record.host_id, instance_id)
        return record

    def move_instance(self, record: InstanceRecord, host_id: str) -> None:
        """Set the instance's host (empty: none), keeping the host index right."""
        if record.host_id:
            self._discard(self._by_host, record.host_id, record.id)
        record.instance.host_id = host_id
        if host_id:
            self._by_host.setdefault(host_id, set()).add(record.id)

    def instances_on(self, host_id: str) -> Iterator[InstanceRecord]:
        for instance_id in sorted(self._by_host.get(host_id, ())):
            yield self.instances[instance_id]

    def instances_of(self, deployment: str) -> list[InstanceRecord]:
        records = [self.instances[i] for i in self._by_deployment.get(deployment, ())]
        records.sort(key=lambda r: r.instance.ordinal)
        return records

    def deployment_names_with_instances(self) -> list[str]:
        return sorted(name for name, ids in self._by_deployment.items() if ids)

    def add_footprint(self, footprint: footprint_pb2.Footprint) -> bool:
        """Keep the newest footprint per fingerprint; True when this one was kept."""
        known = self.footprints.get(footprint.fingerprint)
        if known is not None and _micros(known) >= _micros(footprint):
            return False
        self.footprints[footprint.fingerprint] = footprint
        return True

    @staticmethod
    def _discard(index: dict[str, set[str]], key: str, value: str) -> None:
        members = index.get(key)
        if members is None:
            return
        members.discard(value)
        if not members:
            del index[key]


def _micros(footprint: footprint_pb2.Footprint) -> int:
    return footprint.measured_at.seconds * 1_000_000 + footprint.measured_at.nanos // 1000
