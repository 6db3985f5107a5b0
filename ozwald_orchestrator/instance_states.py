"""How an agent's instance state reads in the fleet."""

from __future__ import annotations

from ozwald.agent.v1 import service_status_pb2
from ozwald.orchestrator.v1 import fleet_state_pb2

_FLEET_STATE: dict[int, fleet_state_pb2.InstanceState.ValueType] = {
    service_status_pb2.INSTANCE_STATE_PENDING: fleet_state_pb2.INSTANCE_STATE_STARTING,
    service_status_pb2.INSTANCE_STATE_CREATING: fleet_state_pb2.INSTANCE_STATE_STARTING,
    service_status_pb2.INSTANCE_STATE_STARTING: fleet_state_pb2.INSTANCE_STATE_STARTING,
    service_status_pb2.INSTANCE_STATE_RESTARTING: fleet_state_pb2.INSTANCE_STATE_STARTING,
    service_status_pb2.INSTANCE_STATE_READY: fleet_state_pb2.INSTANCE_STATE_RUNNING,
    service_status_pb2.INSTANCE_STATE_UNHEALTHY: fleet_state_pb2.INSTANCE_STATE_UNHEALTHY,
    service_status_pb2.INSTANCE_STATE_FAILED: fleet_state_pb2.INSTANCE_STATE_FAILED,
}


def fleet_state_of(
    state: service_status_pb2.InstanceState.ValueType,
) -> fleet_state_pb2.InstanceState.ValueType | None:
    """The fleet state an agent state means; None for stopping and stopped, which say
    nothing about an instance still assigned (the agent is leaving an old spec)."""
    return _FLEET_STATE.get(state)
