"""The profiling RPCs of the in-memory agent: scripted measurements, stored footprints.

`ProfilingFake` plays ProfileServices the way the agent's contract describes it: a
service named in `refusals` is refused before anything starts (ADMISSION_REFUSED with the
refused plan); otherwise each service goes through its phases, ending DONE with a
footprint (stored, and listed by ListFootprints) or, when named in `profile_failures`,
FAILED with that reason and its log lines.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
from google.protobuf import any_pb2
from grpc_status import rpc_status as grpc_rpc_status
from ozwald.agent.v1 import agent_service_pb2 as pb
from ozwald.agent.v1 import footprint_pb2 as F
from ozwald.agent.v1 import plan_pb2 as P
from ozwald.common.v1 import error_reason_pb2, service_spec_pb2
from ozwald.common.v1.service_spec_pb2 import ServiceSpec

from ozwald_sdk import rpc_status
from ozwald_sdk.fingerprint import fingerprint

GIB = 1024**3
FootprintKey = tuple[str, str, str, str]


def footprint_for(spec: ServiceSpec, peak_memory: int = 2 * GIB) -> F.Footprint:
    """What the fake measures for `spec`: 2 GiB, ready in 3.5 s."""
    footprint = F.Footprint(
        realm=spec.realm,
        service=spec.name,
        variety=spec.variety,
        profile=spec.profile,
        fingerprint=fingerprint(spec),
        peak_memory_bytes=peak_memory,
        memory_peak_source=F.MEMORY_PEAK_SOURCE_CGROUP_V1_MAX_USAGE,
        peak_cpu_cores=1.5,
        mean_cpu_cores=0.75,
        samples=12,
        host=F.MeasuredHost(hostname="fakehost"),
    )
    footprint.time_to_ready.FromMilliseconds(3500)
    footprint.measured_at.FromSeconds(1_800_000_000)
    if spec.openai.api:
        footprint.warm_up.CopyFrom(F.WarmUp(api=spec.openai.api, model="m", requests=8))
    else:
        footprint.warm_up.skipped_reason = "the service declares no openai API"
    return footprint


@dataclass
class ProfilingState:
    footprints: dict[FootprintKey, F.Footprint] = field(default_factory=dict)
    """What ListFootprints lists; ProfileServices adds to it."""
    profile_failures: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    """Service name -> (why it fails, its last log lines)."""
    profiled: list[pb.ProfileServicesRequest] = field(default_factory=list)


class ProfilingFake:
    """Mixed into ProvisioningFake, which holds `profiling` and `refusals`."""

    profiling: ProfilingState
    refusals: dict[str, P.Refusal]

    def ProfileServices(
        self, request: pb.ProfileServicesRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.ProfileServicesResponse]:
        self.profiling.profiled.append(request)
        refused = [self.refusals[s.name] for s in request.services if s.name in self.refusals]
        if refused:
            plan = P.Plan(admitted=False, refusals=refused, hostname="fakehost")
            status = rpc_status.status_error(
                grpc.StatusCode.FAILED_PRECONDITION,
                error_reason_pb2.ERROR_REASON_ADMISSION_REFUSED,
                f"nothing was started: {refused[0].message}",
                "see each refusal's remedy",
            )
            packed = any_pb2.Any()
            packed.Pack(plan)
            status.details.append(packed)
            context.abort_with_status(grpc_rpc_status.to_status(status))
        total = len(request.services)
        for index, spec in enumerate(request.services, start=1):

            def step(
                phase: pb.ProfilePhase.ValueType, detail: str = ""
            ) -> pb.ProfileServicesResponse:
                return pb.ProfileServicesResponse(
                    service=P.ServiceRef(realm=spec.realm, name=spec.name),  # noqa: B023
                    variety=spec.variety,  # noqa: B023
                    profile=spec.profile,  # noqa: B023
                    index=index,  # noqa: B023
                    total=total,
                    phase=phase,
                    detail=detail,
                )

            yield step(pb.PROFILE_PHASE_ADMITTING)
            yield step(pb.PROFILE_PHASE_STARTING)
            yield step(pb.PROFILE_PHASE_WAITING_FOR_READY, "connection refused")
            yield step(pb.PROFILE_PHASE_WAITING_FOR_READY, "HTTP 503")
            if spec.name in self.profiling.profile_failures:
                why, logs = self.profiling.profile_failures[spec.name]
                yield step(pb.PROFILE_PHASE_STOPPING)
                failed = step(pb.PROFILE_PHASE_FAILED, why)
                failed.last_log_lines.extend(logs)
                yield failed
                continue
            requests = request.warmup_requests if request.HasField("warmup_requests") else 8
            if spec.openai.api != service_spec_pb2.OPEN_AI_API_UNSPECIFIED and requests:
                for done in range(1, requests + 1):
                    warming = step(pb.PROFILE_PHASE_WARMING_UP, f"{done}/{requests} requests")
                    warming.warmup_done, warming.warmup_total = done, requests
                    yield warming
            yield step(pb.PROFILE_PHASE_STOPPING)
            footprint = footprint_for(spec)
            self.profiling.footprints[(spec.realm, spec.name, spec.variety, spec.profile)] = (
                footprint
            )
            finished = step(pb.PROFILE_PHASE_DONE, "footprint stored")
            finished.footprint.CopyFrom(footprint)
            yield finished

    def ListFootprints(
        self, request: pb.ListFootprintsRequest, context: grpc.ServicerContext
    ) -> pb.ListFootprintsResponse:
        return pb.ListFootprintsResponse(
            footprints=[
                f
                for key, f in sorted(self.profiling.footprints.items())
                if (not request.realm or key[0] == request.realm)
                and (not request.service or key[1] == request.service)
            ]
        )

    def ForgetFootprints(
        self, request: pb.ForgetFootprintsRequest, context: grpc.ServicerContext
    ) -> pb.ForgetFootprintsResponse:
        gone = [
            key
            for key in sorted(self.profiling.footprints)
            if (not request.realm or key[0] == request.realm)
            and key[1] == request.service
            and (not request.HasField("variety") or key[2] == request.variety)
            and (not request.HasField("profile") or key[3] == request.profile)
        ]
        return pb.ForgetFootprintsResponse(
            forgotten=[self.profiling.footprints.pop(key) for key in gone]
        )
