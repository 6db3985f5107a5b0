"""Scaling: a new version of one deployment that changes only its replica count.

A scale is a desired-state change like an apply (stored, versioned, evented), but it names
one deployment and one number, so `ozwald scale web 5` needs no config file. It is not a
rollout: what the instances run is unchanged, so the instances that stay keep running
untouched, new ones go through placement (and their agent's admission), and scaling down
removes the highest ordinals. Scaling to 0 keeps the deployment, with nothing placed.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping

import grpc
from ozwald.common.v1 import error_reason_pb2
from ozwald.orchestrator.v1 import deployment_pb2, placement_pb2

from ozwald_orchestrator.desired_state import UNCHANGED, UPDATE, DesiredChange
from ozwald_orchestrator.rpc_errors import OrchestratorError
from ozwald_orchestrator.validation import MAX_REPLICAS


def scale_change(
    current: Mapping[str, deployment_pb2.Deployment],
    versions: Mapping[str, int],
    name: str,
    replicas: int,
    now: datetime.datetime,
) -> DesiredChange:
    """The change that gives deployment `name` (which must exist) `replicas` instances;
    nothing changes when it has that many already. Raises DEPLOYMENT_INVALID past the
    replica limit."""
    if replicas > MAX_REPLICAS:
        raise OrchestratorError(
            grpc.StatusCode.INVALID_ARGUMENT,
            error_reason_pb2.ERROR_REASON_DEPLOYMENT_INVALID,
            f"cannot scale {name!r} to {replicas} replicas: the limit is {MAX_REPLICAS}",
            f"choose a count from 0 to {MAX_REPLICAS}; nothing was changed",
            deployment=name,
        )
    stored = current[name]
    if stored.replicas == replicas:
        return DesiredChange(
            deployments=dict(current),
            changes=[placement_pb2.DeploymentChange(deployment=name, kind=UNCHANGED)],
        )
    scaled = deployment_pb2.Deployment()
    scaled.CopyFrom(stored)
    scaled.replicas = replicas
    scaled.version = max(versions.get(name, 0), stored.version) + 1
    scaled.updated_at.FromDatetime(now)
    return DesiredChange(
        deployments={**current, name: scaled},
        changes=[
            placement_pb2.DeploymentChange(
                deployment=name, kind=UPDATE, changed_fields=["replicas"]
            )
        ],
        upserts=[scaled],
    )
