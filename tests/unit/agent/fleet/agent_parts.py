"""The real provisioner, store and footprints of an agent, over an in-memory runtime."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ozwald.agent.v1 import service_scope_pb2
from ozwald.common.v1 import host_profile_pb2, service_spec_pb2

from ozwald_agent.provisioning.provisioner import Provisioner
from ozwald_agent.state.footprints import FootprintStore
from ozwald_agent.state.store import AgentStore
from tests.unit.admission.builders import GIB, FakeHostFacts, host, service
from tests.unit.provisioning.memory_runtime import MemoryRuntime

FLEET = service_scope_pb2.SERVICE_SCOPE_FLEET
DYNAMIC = service_scope_pb2.SERVICE_SCOPE_DYNAMIC
PERSISTENT = service_scope_pb2.SERVICE_SCOPE_PERSISTENT


@dataclass
class AgentParts:
    store: AgentStore
    footprints: FootprintStore
    runtime: MemoryRuntime
    provisioner: Provisioner
    profile: host_profile_pb2.HostProfile

    def close(self) -> None:
        self.provisioner.stop()
        self.store.close()
        self.footprints.close()


def agent_parts(
    directory: Path, *, memory_gib: float = 16, runtime: MemoryRuntime | None = None
) -> AgentParts:
    store = AgentStore(directory / "agent.db")
    footprints = FootprintStore(directory / "agent.db")
    runtime = runtime or MemoryRuntime()
    profile = host(cores=8, memory_gib=memory_gib)
    provisioner = Provisioner(
        store, runtime, FakeHostFacts(), lambda: profile, footprints=footprints
    )
    return AgentParts(store, footprints, runtime, provisioner, profile)


def instance(
    name: str, *, memory_gib: float = 1, cpus: float = 0.5, realm: str = "fleet"
) -> service_spec_pb2.ServiceSpec:
    """A fleet instance: a small service named by its instance id (8 cores, 16 GiB host)."""
    return service(name, realm=realm, memory=int(memory_gib * GIB), cpus=cpus)
