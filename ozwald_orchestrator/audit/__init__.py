"""The audit log: who did what to the fleet and when, with the state before and after,
append-only and hash-chained (docs/audit.md). `AuditLog` records and verifies;
`AuditServicer` serves it as AuditService; `caller` names who made a gRPC call; kinds.py
holds the words for what happened, states.py what before and after hold."""

from ozwald_orchestrator.audit.actor import LOCAL, caller
from ozwald_orchestrator.audit.kinds import ORCHESTRATOR, agent_actor
from ozwald_orchestrator.audit.log import (
    AuditLog,
    AuditLogClosedError,
    AuditWriteError,
    default_checkpoint_path,
)
from ozwald_orchestrator.audit.service import AuditServicer
from ozwald_orchestrator.audit.states import (
    assignment_state,
    deployment_state,
    host_state,
    instance_state,
    joined_host,
    rollout_state,
)
from ozwald_orchestrator.audit.table import AuditQuery, AuditSchemaError

__all__ = [
    "LOCAL",
    "ORCHESTRATOR",
    "AuditLog",
    "AuditLogClosedError",
    "AuditQuery",
    "AuditSchemaError",
    "AuditServicer",
    "AuditWriteError",
    "agent_actor",
    "assignment_state",
    "caller",
    "default_checkpoint_path",
    "deployment_state",
    "host_state",
    "instance_state",
    "joined_host",
    "rollout_state",
]
