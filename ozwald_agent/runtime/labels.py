"""The `ozwald.*` labels every Ozwald container, network and volume carries, and parsing them.

Labels are how a restarted agent finds what it runs (and nothing else): every query for
"ours" filters on `ozwald.managed=true` AND `ozwald.agent=<agent id>`, so two agents on one
engine (tests, simulated hosts) never see, adopt or remove each other's resources.

Containers:

| label | value |
|---|---|
| `ozwald.managed` | `true` |
| `ozwald.agent` | the agent instance id given by the caller |
| `ozwald.realm` | realm name |
| `ozwald.service` | service name |
| `ozwald.variety` | `nvidia`, `amdgpu`, `cpu`, or empty |
| `ozwald.profile` | profile name, or empty |
| `ozwald.fingerprint` | the spec fingerprint given by the caller (equal => nothing to change) |
| `ozwald.persistent` | `true` or `false` |
| `ozwald.gpus` | assigned GPU UUIDs, comma-separated, in assignment order; empty for none |

Networks add `ozwald.network` (the declared name; empty for the realm's shared network);
volumes add `ozwald.volume` (the volume's name). Both carry managed, agent and realm.

Labels cannot change after a container is created, so everything here describes the
container as created; what happens to it afterwards lives in the agent's state store.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

logger = logging.getLogger(__name__)

PREFIX = "ozwald."
MANAGED = "ozwald.managed"
AGENT = "ozwald.agent"
REALM = "ozwald.realm"
SERVICE = "ozwald.service"
VARIETY = "ozwald.variety"
PROFILE = "ozwald.profile"
FINGERPRINT = "ozwald.fingerprint"
PERSISTENT = "ozwald.persistent"
GPUS = "ozwald.gpus"
NETWORK = "ozwald.network"
VOLUME = "ozwald.volume"

TRUE = "true"
FALSE = "false"
_REQUIRED = (AGENT, REALM, SERVICE, FINGERPRINT)


@dataclass(frozen=True)
class ServiceLabels:
    """What an Ozwald container's labels say about it."""

    agent_id: str
    realm: str
    service: str
    fingerprint: str
    variety: str = ""
    profile: str = ""
    persistent: bool = False
    gpus: tuple[str, ...] = ()

    def to_labels(self) -> dict[str, str]:
        return {
            MANAGED: TRUE,
            AGENT: self.agent_id,
            REALM: self.realm,
            SERVICE: self.service,
            VARIETY: self.variety,
            PROFILE: self.profile,
            FINGERPRINT: self.fingerprint,
            PERSISTENT: TRUE if self.persistent else FALSE,
            GPUS: ",".join(self.gpus),
        }

    @classmethod
    def from_labels(cls, labels: Mapping[str, str] | None) -> ServiceLabels | None:
        """The labels' meaning, or None when they do not describe an Ozwald service.

        A container marked managed but missing a required label was not made by this
        code (or was tampered with); it is reported as not Ozwald's rather than guessed at.
        """
        if not labels or labels.get(MANAGED) != TRUE:
            return None
        missing = [key for key in _REQUIRED if not labels.get(key)]
        if missing:
            logger.warning(
                "container labelled %s=true lacks %s; treating it as not Ozwald's",
                MANAGED,
                ", ".join(missing),
            )
            return None
        gpus = labels.get(GPUS, "")
        return cls(
            agent_id=labels[AGENT],
            realm=labels[REALM],
            service=labels[SERVICE],
            fingerprint=labels[FINGERPRINT],
            variety=labels.get(VARIETY, ""),
            profile=labels.get(PROFILE, ""),
            persistent=labels.get(PERSISTENT) == TRUE,
            gpus=tuple(g for g in gpus.split(",") if g),
        )


def resource_labels(agent_id: str, realm: str, extra: Mapping[str, str]) -> dict[str, str]:
    """Labels for a network or volume the agent creates."""
    return {MANAGED: TRUE, AGENT: agent_id, REALM: realm, **extra}


def label_filters(
    agent_id: str, *, realm: str | None = None, service: str | None = None
) -> list[str]:
    """Docker `label` filters (ANDed by the engine) selecting one agent's resources."""
    filters = [f"{MANAGED}={TRUE}", f"{AGENT}={agent_id}"]
    if realm is not None:
        filters.append(f"{REALM}={realm}")
    if service is not None:
        filters.append(f"{SERVICE}={service}")
    return filters


def reserved_keys(labels: Sequence[str]) -> list[str]:
    """The keys a user may not set because they are Ozwald's own."""
    return sorted(key for key in labels if key.startswith(PREFIX))
