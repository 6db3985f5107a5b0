"""What the agent knows runs on the host now: the other half of a plan's input."""

from __future__ import annotations

from dataclasses import dataclass

from ozwald.agent.v1 import service_scope_pb2
from ozwald.common.v1 import service_spec_pb2

from ozwald_agent.admission.keys import ServiceKey


@dataclass(frozen=True)
class RunningService:
    """One service the agent runs now, as it was admitted.

    `spec` and `fingerprint` are what was admitted and recorded; a plan compares the
    desired spec's fingerprint with `fingerprint`, never re-derives it from `spec`.
    `gpu_uuids` are the devices it was pinned to. Persistent services (for a plan: the
    services of another scope) are never stopped or restarted by a plan; their resources
    stay reserved. `scope` says whose they are, for the words people read.
    """

    realm: str
    name: str
    spec: service_spec_pb2.ServiceSpec
    fingerprint: str
    gpu_uuids: tuple[str, ...] = ()
    persistent: bool = False
    scope: service_scope_pb2.ServiceScope.ValueType = service_scope_pb2.SERVICE_SCOPE_UNSPECIFIED

    @property
    def key(self) -> ServiceKey:
        return (self.realm, self.name)

    def held_as(self) -> str:
        """What a plan may not change, in words: "persistent service", "fleet instance
        the orchestrator assigned to this host"..."""
        return _HELD_AS.get(self.scope, "persistent service")


_HELD_AS = {
    service_scope_pb2.SERVICE_SCOPE_FLEET: "fleet instance the orchestrator assigned to this host",
    service_scope_pb2.SERVICE_SCOPE_DYNAMIC: "dynamic service (`ozwald update_services`)",
}
