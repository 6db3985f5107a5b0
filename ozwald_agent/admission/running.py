"""What the agent knows runs on the host now: the other half of a plan's input."""

from __future__ import annotations

from dataclasses import dataclass

from ozwald.common.v1 import service_spec_pb2

from ozwald_agent.admission.keys import ServiceKey


@dataclass(frozen=True)
class RunningService:
    """One service the agent runs now, as it was admitted.

    `spec` and `fingerprint` are what was admitted and recorded; a plan compares the
    desired spec's fingerprint with `fingerprint`, never re-derives it from `spec`.
    `gpu_uuids` are the devices it was pinned to. Persistent services are never stopped
    or restarted by a plan; their resources stay reserved.
    """

    realm: str
    name: str
    spec: service_spec_pb2.ServiceSpec
    fingerprint: str
    gpu_uuids: tuple[str, ...] = ()
    persistent: bool = False

    @property
    def key(self) -> ServiceKey:
        return (self.realm, self.name)
