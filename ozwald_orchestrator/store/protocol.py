"""The orchestrator's store interface, shaped so PostgreSQL can back it later.

The running orchestrator keeps the fleet in memory and writes every change through a
store; the store is read back whole only at start. Every write is one `commit` of a
`StoreBatch` in one transaction, so a crash leaves either all of a change or none of it.
Callers see messages and plain values only: no cursors, no SQL, no engine-specific
behaviour.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ozwald.agent.v1 import footprint_pb2
from ozwald.orchestrator.v1 import (
    agent_link_service_pb2,
    deployment_pb2,
    fleet_state_pb2,
    rollout_pb2,
)


@dataclass(frozen=True)
class DesiredVersion:
    """One stored change of the desired state (every apply that changes anything)."""

    version: int
    applied_at: datetime.datetime
    # What changed, in words, e.g. "create web; update db; delete old".
    summary: str


@dataclass(frozen=True)
class DeploymentRevision:
    """One version of one deployment, as it was stored."""

    deployment: deployment_pb2.Deployment
    desired_version: int
    recorded_at: datetime.datetime
    # True for the revision that removed the deployment.
    deleted: bool


@dataclass(frozen=True)
class GpuHold:
    """The GPUs the placement ledger reserved for an instance: their vendor and their
    indices on the host (so a restarted orchestrator reserves exactly the same)."""

    vendor: int
    indices: tuple[int, ...]


@dataclass(frozen=True)
class RemovedDeployment:
    """A deployment taken out of the desired state, and the version that records it."""

    name: str
    version: int


@dataclass(frozen=True)
class StoredRollout:
    """One rollout of a deployment with the bookkeeping a restart needs to continue it."""

    rollout: rollout_pb2.Rollout
    # The deployment as last fully rolled out (what auto_revert goes back to), if any.
    stable: deployment_pb2.Deployment | None
    # When each instance got the target version.
    replaced_at: dict[str, datetime.datetime]
    # Instances of the target version that were healthy, and those that missed their
    # healthy deadline.
    healthy: frozenset[str]
    failed: frozenset[str]


@dataclass
class StoreBatch:
    """Changes written together, in one transaction. Upserts replace by key."""

    desired_version: DesiredVersion | None = None
    # New versions of deployments (each is also appended to its history).
    deployments: list[deployment_pb2.Deployment] = field(default_factory=list)
    removed_deployments: list[RemovedDeployment] = field(default_factory=list)
    instances: list[fleet_state_pb2.Instance] = field(default_factory=list)
    # The GPUs the ledger reserved for an instance; an instance not named here keeps
    # what was stored for it.
    instance_gpus: dict[str, GpuHold] = field(default_factory=dict)
    deleted_instances: list[str] = field(default_factory=list)
    hosts: list[fleet_state_pb2.Host] = field(default_factory=list)
    # host id -> when it was last heard from; written without rewriting the host.
    last_seen: dict[str, datetime.datetime] = field(default_factory=dict)
    assignments: dict[str, agent_link_service_pb2.Assignment] = field(default_factory=dict)
    events: list[fleet_state_pb2.FleetEvent] = field(default_factory=list)
    footprints: list[footprint_pb2.Footprint] = field(default_factory=list)
    # Rollouts, upserted by (deployment, id).
    rollouts: list[StoredRollout] = field(default_factory=list)

    def empty(self) -> bool:
        return not (
            self.desired_version
            or self.deployments
            or self.removed_deployments
            or self.instances
            or self.instance_gpus
            or self.deleted_instances
            or self.hosts
            or self.last_seen
            or self.assignments
            or self.events
            or self.footprints
            or self.rollouts
        )


@dataclass
class FleetSnapshot:
    """Everything the orchestrator needs to resume after a restart."""

    desired_version: int
    deployments: list[deployment_pb2.Deployment]
    instances: list[fleet_state_pb2.Instance]
    instance_gpus: dict[str, GpuHold]
    hosts: list[fleet_state_pb2.Host]
    assignments: dict[str, agent_link_service_pb2.Assignment]
    footprints: list[footprint_pb2.Footprint]
    last_event_sequence: int
    # The highest version each deployment ever had, removed ones included, so that a
    # deployment created again continues its history instead of reusing versions.
    deployment_versions: dict[str, int]
    # Each deployment's latest rollout (deployments removed since included).
    rollouts: list[StoredRollout] = field(default_factory=list)


class FleetStore(Protocol):
    """Durable fleet state. Implementations are used from one thread at a time."""

    def load(self) -> FleetSnapshot:
        """Everything stored now."""
        ...

    def commit(self, batch: StoreBatch) -> None:
        """Write `batch` in one transaction."""
        ...

    def put_instances(self, instances: Sequence[fleet_state_pb2.Instance]) -> None:
        """Upsert instances in one transaction."""
        ...

    def read_events(self, after_sequence: int, limit: int) -> list[fleet_state_pb2.FleetEvent]:
        """Up to `limit` stored events with a sequence above `after_sequence`, in order."""
        ...

    def desired_versions(self) -> list[DesiredVersion]:
        """Every stored desired-state version, oldest first."""
        ...

    def deployment_history(self, name: str) -> list[DeploymentRevision]:
        """Every stored version of one deployment, oldest first."""
        ...

    def close(self) -> None: ...
