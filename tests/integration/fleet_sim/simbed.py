"""The simulated testbed for scenario tests: the real orchestrator process, simulated agents.

Everything asserted comes from the orchestrator's FleetService (what an operator sees) and
from the simulated hosts' runtimes (what actually runs), never from logs.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ozwald.agent.v1 import service_status_pb2
from ozwald.common.v1 import gpu_pb2, service_spec_pb2
from ozwald.orchestrator.v1 import deployment_pb2, fleet_state_pb2

from ozwald_sdk.orchestrator_client import FleetClient
from ozwald_testbed.sim_orchestrator import OrchestratorProcess
from ozwald_testbed.simulated_fleet import SimulatedFleet
from ozwald_testbed.simulated_hardware import GIB

T = TypeVar("T")

HostState = fleet_state_pb2.HostState
InstanceState = fleet_state_pb2.InstanceState
RUNNING = fleet_state_pb2.INSTANCE_STATE_RUNNING
HOST_READY = fleet_state_pb2.HOST_STATE_READY
HOST_DOWN = fleet_state_pb2.HOST_STATE_DOWN
HOST_LOST = fleet_state_pb2.HOST_STATE_LOST
REALM = "simbed"
POLL_S = 0.1


def cpu_deployment(
    name: str,
    replicas: int,
    *,
    memory_gib: int = 1,
    spread: bool = True,
    labels: dict[str, str] | None = None,
    environment: dict[str, str] | None = None,
    restart_retries: int = 0,
) -> deployment_pb2.Deployment:
    spec = service_spec_pb2.ServiceSpec(
        realm=REALM, name=name, variety="cpu", image="ozwald/sim:1", environment=environment
    )
    spec.resources.memory_bytes = memory_gib * GIB
    spec.resources.cpus = 1
    if restart_retries:
        spec.restart_policy.kind = service_spec_pb2.RESTART_POLICY_KIND_ON_FAILURE
        spec.restart_policy.max_retries = restart_retries
    deployment = deployment_pb2.Deployment(
        name=name, realm=REALM, service=name, candidates=[spec], replicas=replicas
    )
    deployment.constraints.spread_across_hosts = spread
    deployment.constraints.host_labels.update(labels or {})
    return deployment


def gpu_deployment(
    name: str, replicas: int, *, vram_gib: int, model: str
) -> deployment_pb2.Deployment:
    spec = service_spec_pb2.ServiceSpec(
        realm=REALM, name=name, variety="nvidia", image="ozwald/sim:1"
    )
    spec.resources.memory_bytes = 8 * GIB
    spec.resources.gpus.count = 1
    spec.resources.gpus.vendor = gpu_pb2.GPU_VENDOR_NVIDIA
    spec.resources.gpus.vram_per_gpu_bytes = vram_gib * GIB
    deployment = deployment_pb2.Deployment(
        name=name, realm=REALM, service=name, candidates=[spec], replicas=replicas
    )
    deployment.constraints.gpu_vendor = gpu_pb2.GPU_VENDOR_NVIDIA
    deployment.constraints.gpu_model = model
    return deployment


@dataclass
class SimBed:
    orchestrator: OrchestratorProcess
    fleet: SimulatedFleet
    client: FleetClient
    work_dir: Path

    async def call(self, method: Callable[..., T], *args: object, **kwargs: object) -> T:
        """A blocking FleetClient call, off the event loop the agents run on."""
        return await asyncio.to_thread(method, *args, **kwargs)

    async def apply(self, deployments: Sequence[deployment_pb2.Deployment]) -> None:
        await self.call(self.client.apply_deployments, list(deployments), realms=[REALM])

    async def instances(self, deployment: str = "") -> list[fleet_state_pb2.Instance]:
        return await self.call(self.client.list_instances, deployment=deployment)

    async def hosts(self) -> dict[str, fleet_state_pb2.Host]:
        return {h.id: h for h in await self.call(self.client.list_hosts)}

    async def placements(self) -> dict[str, str]:
        return {i.id: i.host_id for i in await self.instances()}

    async def wait_until(
        self,
        what: str,
        check: Callable[[], Awaitable[bool]],
        timeout: float,
    ) -> float:
        """Polls `check` until it holds; returns the seconds it took. On timeout the
        failure shows the fleet as the orchestrator sees it."""
        start = time.monotonic()
        while True:
            if await check():
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise AssertionError(
                    f"not within {timeout:g} s: {what}\n{await self.describe()}\n"
                    f"orchestrator log tail:\n{self.orchestrator.log_tail(30)}"
                )
            await asyncio.sleep(POLL_S)

    async def wait_all_running(self, deployment: str, replicas: int, timeout: float = 20) -> None:
        async def check() -> bool:
            found = await self.instances(deployment)
            return len(found) == replicas and all(i.state == RUNNING for i in found)

        await self.wait_until(f"{replicas} instances of {deployment} RUNNING", check, timeout)

    async def wait_host_state(
        self, host_id: str, state: HostState.ValueType, timeout: float
    ) -> float:
        async def check() -> bool:
            host = (await self.hosts()).get(host_id)
            return host is not None and host.state == state

        return await self.wait_until(f"{host_id} {HostState.Name(state)}", check, timeout)

    def running_on_hosts(self) -> dict[str, list[str]]:
        """Instance id -> the simulated hosts whose runtime runs it (not stopping)."""
        where: dict[str, list[str]] = defaultdict(list)
        for agent in self.fleet:
            for status in agent.runtime.statuses():
                if status.state != service_status_pb2.INSTANCE_STATE_STOPPING:
                    where[status.name].append(agent.host_id)
        return dict(where)

    def duplicates(self) -> dict[str, list[str]]:
        return {i: hosts for i, hosts in self.running_on_hosts().items() if len(hosts) > 1}

    def container_ids(self) -> dict[tuple[str, str], str]:
        return {
            (agent.host_id, s.name): s.container_id
            for agent in self.fleet
            for s in agent.runtime.statuses()
        }

    async def describe(self) -> str:
        lines = ["hosts:"]
        try:
            for host in (await self.hosts()).values():
                lines.append(
                    f"  {host.id} {HostState.Name(host.state)} connected={host.connected} "
                    f"assignment v{host.assignment_version} applied v"
                    f"{host.applied_assignment_version}"
                )
            lines.append("instances:")
            for i in await self.instances():
                lines.append(
                    f"  {i.id} on {i.host_id or '-'} {InstanceState.Name(i.state)} "
                    f"reschedules={i.reschedules} {i.reason}"
                )
        except Exception as e:  # the picture is a courtesy; the failure is what matters
            lines.append(f"  (cannot ask the orchestrator: {e})")
        lines.append(f"running on simulated hosts: {self.running_on_hosts()}")
        return "\n".join(lines)
