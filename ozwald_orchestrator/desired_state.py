"""What an apply changes: the realms' new deployment sets against the stored ones.

An apply replaces the complete deployment set of the realms it names. Deployments are
compared without the orchestrator's own fields (version, updated_at), so applying the
same file twice finds nothing to change and stores nothing.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import grpc
from ozwald.common.v1 import error_reason_pb2
from ozwald.orchestrator.v1 import deployment_pb2, placement_pb2

from ozwald_orchestrator.rpc_errors import OrchestratorError
from ozwald_orchestrator.store.protocol import RemovedDeployment

CREATE = placement_pb2.DEPLOYMENT_CHANGE_KIND_CREATE
UPDATE = placement_pb2.DEPLOYMENT_CHANGE_KIND_UPDATE
DELETE = placement_pb2.DEPLOYMENT_CHANGE_KIND_DELETE
UNCHANGED = placement_pb2.DEPLOYMENT_CHANGE_KIND_UNCHANGED

# The fields a person changes; version and updated_at are the orchestrator's.
_COMPARED_FIELDS = (
    "realm",
    "service",
    "candidates",
    "replicas",
    "constraints",
    "update",
    "strategy",
)


@dataclass
class DesiredChange:
    """The outcome of comparing a request with the stored deployments."""

    # The complete desired set after the change, by name.
    deployments: dict[str, deployment_pb2.Deployment]
    # One entry per deployment the request touches, by name (no placements yet).
    changes: list[placement_pb2.DeploymentChange] = field(default_factory=list)
    # New or changed deployments, versioned and stamped.
    upserts: list[deployment_pb2.Deployment] = field(default_factory=list)
    removed: list[RemovedDeployment] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.upserts or self.removed)

    def summary(self) -> str:
        words = {CREATE: "create", UPDATE: "update", DELETE: "delete"}
        return "; ".join(f"{words[c.kind]} {c.deployment}" for c in self.changes if c.kind in words)


def changed_fields(old: deployment_pb2.Deployment, new: deployment_pb2.Deployment) -> list[str]:
    differ: list[str] = []
    for name in _COMPARED_FIELDS:
        if name in ("candidates",):
            if list(old.candidates) != list(new.candidates):
                differ.append(name)
        elif name == "constraints":
            if old.constraints != new.constraints:
                differ.append(name)
        elif getattr(old, name) != getattr(new, name):
            differ.append(name)
    return differ


def compare(
    current: Mapping[str, deployment_pb2.Deployment],
    versions: Mapping[str, int],
    requested: Sequence[deployment_pb2.Deployment],
    realms: Sequence[str],
    now: datetime.datetime,
) -> DesiredChange:
    """The change that makes `requested` the complete set of its realms and of `realms`.

    Raises DEPLOYMENT_INVALID when a requested name belongs to a deployment of a realm
    the request does not replace (names are unique across the fleet)."""
    affected = set(realms) | {d.realm for d in requested}
    wanted = {d.name: d for d in requested}
    for name, deployment in wanted.items():
        stored = current.get(name)
        if stored is not None and stored.realm != deployment.realm and stored.realm not in affected:
            raise OrchestratorError(
                grpc.StatusCode.INVALID_ARGUMENT,
                error_reason_pb2.ERROR_REASON_DEPLOYMENT_INVALID,
                f"deployment {name!r} already exists in realm {stored.realm!r}; deployment "
                "names are unique across the fleet",
                f"rename it, or apply realm {stored.realm!r} without it first",
                deployment=name,
            )
    result = DesiredChange(
        deployments={n: d for n, d in current.items() if d.realm not in affected or n in wanted}
    )
    for name in sorted(wanted.keys() | {n for n, d in current.items() if d.realm in affected}):
        stored = current.get(name)
        new = wanted.get(name)
        if new is None:
            assert stored is not None
            version = max(versions.get(name, 0), stored.version) + 1
            result.removed.append(RemovedDeployment(name, version))
            result.deployments.pop(name, None)
            result.changes.append(placement_pb2.DeploymentChange(deployment=name, kind=DELETE))
            continue
        if stored is not None:
            differ = changed_fields(stored, new)
            if not differ:
                result.deployments[name] = stored
                result.changes.append(
                    placement_pb2.DeploymentChange(deployment=name, kind=UNCHANGED)
                )
                continue
            kind = UPDATE
        else:
            differ = []
            kind = CREATE
        versioned = deployment_pb2.Deployment()
        versioned.CopyFrom(new)
        base = max(versions.get(name, 0), stored.version if stored is not None else 0)
        versioned.version = base + 1
        versioned.updated_at.FromDatetime(now)
        result.deployments[name] = versioned
        result.upserts.append(versioned)
        result.changes.append(
            placement_pb2.DeploymentChange(deployment=name, kind=kind, changed_fields=differ)
        )
    return result
