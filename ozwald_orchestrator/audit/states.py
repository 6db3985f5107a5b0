"""What an audit record's before and after hold for each kind of thing (docs/audit.md).

Small, flat dicts for what changes often (instances, hosts, assignments), so recording
a state change costs microseconds and the text view shows exactly the fields that
changed; the full message for deployments, which operators change rarely and whose
every field matters.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from ozwald.orchestrator.v1 import (
    agent_link_service_pb2,
    deployment_pb2,
    fleet_state_pb2,
    rollout_pb2,
)


def deployment_state(deployment: deployment_pb2.Deployment) -> dict[str, Any]:
    """The whole deployment in the protobuf JSON mapping (proto field names)."""
    return json_format.MessageToDict(deployment, preserving_proto_field_name=True)


def instance_state(instance: fleet_state_pb2.Instance) -> dict[str, Any]:
    """Where an instance stands: state, host, variety, spec version, reason, reschedules."""
    return {
        "state": _enum_word(fleet_state_pb2.InstanceState.Name(instance.state)),
        "host_id": instance.host_id,
        "variety": instance.variety,
        "deployment_version": instance.deployment_version,
        "reason": instance.reason,
        "reschedules": instance.reschedules,
    }


def host_state(host: fleet_state_pb2.Host) -> dict[str, Any]:
    """A host's state as the orchestrator judges it, whether its agent is connected,
    whether it is cordoned, and where its drain stands ("" when it never had one)."""
    drain = host.drain.state if host.HasField("drain") else fleet_state_pb2.DRAIN_STATE_UNSPECIFIED
    return {
        "state": _enum_word(fleet_state_pb2.HostState.Name(host.state)),
        "connected": host.connected,
        "cordoned": host.cordoned,
        "drain": "" if not drain else _enum_word(fleet_state_pb2.DrainState.Name(drain)),
    }


def joined_host(host: fleet_state_pb2.Host) -> dict[str, Any]:
    """What a host brought when it joined: labels and the capacity it declared."""
    profile = host.profile
    return {
        "labels": dict(sorted(host.labels.items())),
        "cpus": profile.cpu.usable_cores or profile.cpu.logical_cores,
        "memory_bytes": profile.memory.total_bytes,
        "gpus": [
            device.name or f"gpu{device.index}"
            for vendor in profile.gpu_vendors
            for device in vendor.devices
        ],
    }


def assignment_state(assignment: agent_link_service_pb2.Assignment) -> dict[str, Any]:
    """An assignment's version and the instances it names, sorted."""
    return {
        "version": assignment.version,
        "instances": sorted(spec.name for spec in assignment.services),
    }


def rollout_state(rollout: rollout_pb2.Rollout) -> dict[str, Any]:
    """Where a rollout stands: which versions, its state and why, whether promoted. Its
    counters are left out: each instance it replaces is on record by itself."""
    return {
        "id": rollout.id,
        "from_version": rollout.from_version,
        "to_version": rollout.to_version,
        "state": _enum_word(rollout_pb2.RolloutState.Name(rollout.state)),
        "reason": rollout.reason,
        "promoted": rollout.promoted,
        "is_revert": rollout.is_revert,
    }


def _enum_word(name: str) -> str:
    """`INSTANCE_STATE_RUNNING` -> `RUNNING`, as the CLI shows states."""
    for prefix in ("INSTANCE_STATE_", "HOST_STATE_", "DRAIN_STATE_", "ROLLOUT_STATE_"):
        if name.startswith(prefix):
            return name.removeprefix(prefix)
    return name
