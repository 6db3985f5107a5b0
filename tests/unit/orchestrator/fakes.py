"""Test doubles for the orchestrator's logic: a clock that moves only when told."""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from ozwald.agent.v1 import service_status_pb2
from ozwald.common.v1 import host_profile_pb2, service_spec_pb2
from ozwald.orchestrator.v1 import agent_link_service_pb2, deployment_pb2

GIB = 1024**3
EPOCH = datetime.datetime(2026, 11, 27, 9, 0, tzinfo=datetime.UTC)


class FakeClock:
    """Monotonic and wall time that advance together, only through `advance`."""

    def __init__(self) -> None:
        self.elapsed = 1000.0

    def monotonic(self) -> float:
        return self.elapsed

    def now(self) -> datetime.datetime:
        return EPOCH + datetime.timedelta(seconds=self.elapsed - 1000.0)

    def advance(self, seconds: float) -> None:
        self.elapsed += seconds


def cpu_profile(cores: int = 8, memory_gib: int = 16) -> host_profile_pb2.HostProfile:
    return host_profile_pb2.HostProfile(
        cpu=host_profile_pb2.CpuInfo(logical_cores=cores, usable_cores=cores),
        memory=host_profile_pb2.MemoryInfo(total_bytes=memory_gib * GIB),
    )


def register(
    host_id: str,
    *,
    applied_version: int = 0,
    instances: Sequence[service_status_pb2.InstanceStatus] = (),
    labels: dict[str, str] | None = None,
) -> agent_link_service_pb2.Register:
    return agent_link_service_pb2.Register(
        host_id=host_id,
        profile=cpu_profile(),
        labels=labels or {},
        applied_assignment_version=applied_version,
        instances=list(instances),
    )


def deployment(
    name: str = "web",
    replicas: int = 1,
    *,
    realm: str = "demo",
    memory_gib: int = 1,
    cpus: float = 1.0,
    image: str = "ozwald/tiny:local",
) -> deployment_pb2.Deployment:
    return deployment_pb2.Deployment(
        name=name,
        realm=realm,
        service=name,
        replicas=replicas,
        candidates=[
            service_spec_pb2.ServiceSpec(
                realm=realm,
                name=name,
                variety="cpu",
                image=image,
                resources=service_spec_pb2.ResourceRequirements(
                    memory_bytes=memory_gib * GIB, cpus=cpus
                ),
            )
        ],
    )
