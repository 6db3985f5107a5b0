"""Hosts built from the recorded hardware fixtures, specs, and in-memory host facts."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ozwald.agent.v1 import plan_pb2
from ozwald.common.v1 import gpu_pb2, host_profile_pb2, service_spec_pb2

from ozwald_agent.admission import (
    Footprint,
    FootprintBook,
    HostFacts,
    RunningService,
    fingerprint,
    plan,
)
from ozwald_agent.hardware.profile import detect_gpus
from ozwald_agent.hardware.snapshot import load_snapshot

FIXTURES = Path(__file__).parents[2] / "fixtures" / "hardware"
GIB = 1 << 30
GB = 10**9
IMAGE = "ozwald/tiny:local"

NVIDIA = gpu_pb2.GPU_VENDOR_NVIDIA
AMD = gpu_pb2.GPU_VENDOR_AMD
ANY = gpu_pb2.GPU_VENDOR_UNSPECIFIED


@functools.cache
def _recorded_gpus(fixture: str) -> tuple[bytes, ...]:
    """The GPU reports the detectors make of a recorded host (replayed once per fixture)."""
    return tuple(r.SerializeToString() for r in detect_gpus(load_snapshot(FIXTURES / fixture)))


def host(
    fixture: str = "cpu_only.json",
    *,
    cores: int = 32,
    memory_gib: float = 512,
    available_gib: float | None = None,
) -> host_profile_pb2.HostProfile:
    """A host with the GPUs of a recorded fixture and the CPU and memory given here."""
    total = int(memory_gib * GIB)
    profile = host_profile_pb2.HostProfile(
        hostname=f"test-{fixture.removesuffix('.json')}",
        cpu=host_profile_pb2.CpuInfo(logical_cores=cores, usable_cores=cores),
        memory=host_profile_pb2.MemoryInfo(
            total_bytes=total,
            available_bytes=total if available_gib is None else int(available_gib * GIB),
        ),
    )
    profile.gpu_vendors.extend(
        gpu_pb2.GpuVendorReport.FromString(r) for r in _recorded_gpus(fixture)
    )
    profile.collected_at.FromSeconds(1_800_000_000)
    return profile


def devices(profile: host_profile_pb2.HostProfile, vendor: int = NVIDIA) -> list[gpu_pb2.GpuDevice]:
    return [d for r in profile.gpu_vendors if r.vendor == vendor for d in r.devices]


def service(
    name: str,
    *,
    realm: str = "default",
    image: str = IMAGE,
    variety: str = "",
    profile: str = "",
    gpus: int = 0,
    vram: int = 0,
    vendor: int = ANY,
    device_ids: Iterable[str] = (),
    memory: int = 0,
    cpus: float = 0.0,
    ports: Iterable[int | tuple[str, int]] = (),
    depends_on: Iterable[str] = (),
    env_files: Iterable[str] = (),
    binds: Iterable[str] = (),
    command: Iterable[str] = (),
    environment: Mapping[str, str] | None = None,
) -> service_spec_pb2.ServiceSpec:
    spec = service_spec_pb2.ServiceSpec(
        realm=realm,
        name=name,
        image=image,
        variety=variety,
        profile=profile,
        depends_on=depends_on,
        env_files=env_files,
        command=command,
        environment=environment or {},
        resources=service_spec_pb2.ResourceRequirements(memory_bytes=memory, cpus=cpus),
    )
    ids = list(device_ids)
    if gpus or ids:
        spec.resources.gpus.CopyFrom(
            service_spec_pb2.GpuRequirement(
                count=gpus or len(ids),
                vendor=gpu_pb2.GpuVendor.ValueType(vendor),
                device_ids=ids,
                vram_per_gpu_bytes=vram,
            )
        )
    for source in binds:
        spec.volumes.add(
            kind=service_spec_pb2.VOLUME_KIND_BIND, source=source, target=f"/mnt{source}"
        )
    for i, port in enumerate(ports):
        host_ip, host_port = port if isinstance(port, tuple) else ("127.0.0.1", port)
        spec.portals.add(name=f"p{i}", host_ip=host_ip, host_port=host_port, container_port=80)
    return spec


def running(
    spec: service_spec_pb2.ServiceSpec, *gpu_uuids: str, persistent: bool = False
) -> RunningService:
    return RunningService(
        realm=spec.realm,
        name=spec.name,
        spec=spec,
        fingerprint=fingerprint(spec),
        gpu_uuids=gpu_uuids,
        persistent=persistent,
    )


@dataclass
class FakeHostFacts:
    """Host facts from sets, recording every question asked."""

    images: set[str] = field(default_factory=lambda: {IMAGE})
    paths: set[str] = field(default_factory=set)
    # (host_ip, port) pairs something listens on; "0.0.0.0" listens on every address.
    listening: set[tuple[str, int]] = field(default_factory=set)
    asked: list[tuple[str, str]] = field(default_factory=list)

    def image_present(self, reference: str) -> bool:
        self.asked.append(("image", reference))
        return reference in self.images

    def host_port_free(self, host_ip: str, host_port: int) -> bool:
        self.asked.append(("port", f"{host_ip}:{host_port}"))
        return not any(
            port == host_port and (ip == host_ip or "0.0.0.0" in (ip, host_ip))
            for ip, port in self.listening
        )

    def path_exists(self, path: str) -> bool:
        self.asked.append(("path", path))
        return path in self.paths


@dataclass
class FakeFootprints:
    recorded: dict[tuple[str, str, str, str], Footprint] = field(default_factory=dict)
    asked: list[tuple[str, str, str, str]] = field(default_factory=list)

    def footprint(
        self, realm: str, service: str, variety: str, profile: str, fingerprint: str
    ) -> Footprint | None:
        self.asked.append((realm, service, variety, profile))
        return self.recorded.get((realm, service, variety, profile))


def make_plan(
    desired: Iterable[service_spec_pb2.ServiceSpec],
    now: Iterable[RunningService] = (),
    on: host_profile_pb2.HostProfile | None = None,
    facts: HostFacts | None = None,
    footprints: FootprintBook | None = None,
) -> plan_pb2.Plan:
    return plan(
        list(desired),
        list(now),
        on if on is not None else host(),
        facts if facts is not None else FakeHostFacts(),
        footprints,
    )


def action(result: plan_pb2.Plan, name: str, realm: str = "default") -> plan_pb2.PlannedAction:
    matches = [a for a in result.actions if (a.realm, a.name) == (realm, name)]
    assert len(matches) == 1, f"{realm}:{name} has {len(matches)} actions"
    return matches[0]


def kinds(result: plan_pb2.Plan) -> dict[str, str]:
    return {
        a.name: plan_pb2.ActionKind.Name(a.kind).removeprefix("ACTION_KIND_")
        for a in result.actions
    }


def reasons(result: plan_pb2.Plan) -> list[tuple[str, str]]:
    """(service, reason) of every refusal, reason without its prefix."""
    return [
        (r.name, plan_pb2.RefusalReason.Name(r.reason).removeprefix("REFUSAL_REASON_"))
        for r in result.refusals
    ]


def uuids(result: plan_pb2.Plan, name: str) -> list[str]:
    return [d.uuid for d in action(result, name).gpus.devices]


def names(refs: Iterable[plan_pb2.ServiceRef]) -> list[str]:
    return [r.name for r in refs]
