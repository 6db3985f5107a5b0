"""The audit log's vocabulary: who acts (actors) and what they do (kinds).

Kinds are stable kebab-case words that scripts filter on (`ozwald audit --kind`);
add new ones, never rename one. docs/audit.md lists them with what before and after
hold.
"""

from __future__ import annotations

import re

# The orchestrator's own decisions: placing, rescheduling, marking hosts down.
ORCHESTRATOR = "orchestrator"

# Operators' actions (FleetService calls that change something).
DEPLOYMENT_CREATED = "deployment-created"
DEPLOYMENT_UPDATED = "deployment-updated"
DEPLOYMENT_DELETED = "deployment-deleted"

# State changes, whoever caused them.
INSTANCE_CREATED = "instance-created"
INSTANCE_PLACED = "instance-placed"
INSTANCE_STATE_CHANGED = "instance-state-changed"
INSTANCE_RESCHEDULED = "instance-rescheduled"
INSTANCE_DELETED = "instance-deleted"
HOST_JOINED = "host-joined"
HOST_STATE_CHANGED = "host-state-changed"
HOST_REFUSED = "host-refused"
ASSIGNMENT_CHANGED = "assignment-changed"
ROLLOUT_STARTED = "rollout-started"
ROLLOUT_CHANGED = "rollout-changed"

KINDS = frozenset(
    {
        DEPLOYMENT_CREATED,
        DEPLOYMENT_UPDATED,
        DEPLOYMENT_DELETED,
        INSTANCE_CREATED,
        INSTANCE_PLACED,
        INSTANCE_STATE_CHANGED,
        INSTANCE_RESCHEDULED,
        INSTANCE_DELETED,
        HOST_JOINED,
        HOST_STATE_CHANGED,
        HOST_REFUSED,
        ASSIGNMENT_CHANGED,
        ROLLOUT_STARTED,
        ROLLOUT_CHANGED,
    }
)

_KEBAB = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")


def is_kind(word: str) -> bool:
    """Whether `word` has the shape of a kind (kebab-case), known or new."""
    return _KEBAB.fullmatch(word) is not None


def agent_actor(host_id: str) -> str:
    """The actor of what an agent reports about its host (its certificate's CN)."""
    return f"agent:{host_id}"
