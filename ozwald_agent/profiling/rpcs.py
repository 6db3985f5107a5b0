"""AgentService's profiling RPCs: ProfileServices, ListFootprints, ForgetFootprints."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import NoReturn

import grpc
from ozwald.agent.v1 import agent_service_pb2
from ozwald.common.v1 import error_reason_pb2

from ozwald_agent.profiling.profiler import (
    DEFAULT_WARMUP_REQUEST_TIMEOUT_S,
    DEFAULT_WARMUP_REQUESTS,
    ProfileOptions,
    Profiler,
)
from ozwald_agent.provisioning.provisioner import AdmissionRefusedError
from ozwald_agent.provisioning.rpcs import admission_refused, runtime_unavailable
from ozwald_agent.runtime.errors import ContainerRuntimeError
from ozwald_agent.state.footprints import FootprintStore
from ozwald_sdk import rpc_status

pb = agent_service_pb2
MAX_WARMUP_REQUESTS = 1000
READY_TIMEOUT_RANGE_S = (1.0, 3600.0)
WARMUP_TIMEOUT_RANGE_S = (1.0, 600.0)


class ProfilingRpcs:
    """Mixed into AgentServicer; `_profiler` and `_footprints` do the work."""

    _profiler: Profiler | None
    _footprints: FootprintStore | None
    _cancel_on_shutdown: set[threading.Event]

    def ProfileServices(
        self, request: pb.ProfileServicesRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.ProfileServicesResponse]:
        profiler = self._profiler
        if profiler is None:
            _unimplemented(context)
        options = _options(request, context)
        _check_services(request, context)
        try:
            profiler.check_fits(list(request.services))
        except AdmissionRefusedError as e:
            admission_refused(
                context,
                e,
                "nothing was started",
                "see each refusal's remedy: free what the service needs, or lower its "
                "declared requirements, then profile again",
            )
        except ContainerRuntimeError as e:
            runtime_unavailable(context, e)
        cancel = threading.Event()
        context.add_callback(cancel.set)
        self._cancel_on_shutdown.add(cancel)
        try:
            yield from profiler.profile(list(request.services), options, cancel)
        finally:
            self._cancel_on_shutdown.discard(cancel)

    def ListFootprints(
        self, request: pb.ListFootprintsRequest, context: grpc.ServicerContext
    ) -> pb.ListFootprintsResponse:
        store = self._footprints
        if store is None:
            _unimplemented(context)
        return pb.ListFootprintsResponse(
            footprints=store.list(realm=request.realm, service=request.service)
        )

    def ForgetFootprints(
        self, request: pb.ForgetFootprintsRequest, context: grpc.ServicerContext
    ) -> pb.ForgetFootprintsResponse:
        store = self._footprints
        if store is None:
            _unimplemented(context)
        if not request.service:
            rpc_status.abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                error_reason_pb2.ERROR_REASON_INVALID_ARGUMENT,
                "name the service whose footprints to forget",
                "set `service` (and optionally realm, variety and profile)",
                field="service",
            )
        forgotten = store.forget(
            request.realm,
            request.service,
            variety=request.variety if request.HasField("variety") else None,
            profile=request.profile if request.HasField("profile") else None,
        )
        return pb.ForgetFootprintsResponse(forgotten=forgotten)


def _options(request: pb.ProfileServicesRequest, context: grpc.ServicerContext) -> ProfileOptions:
    requests = (
        request.warmup_requests if request.HasField("warmup_requests") else DEFAULT_WARMUP_REQUESTS
    )
    if requests > MAX_WARMUP_REQUESTS:
        _invalid(
            context,
            "warmup_requests",
            f"{requests} warm-up requests is more than {MAX_WARMUP_REQUESTS}",
            f"ask for at most {MAX_WARMUP_REQUESTS}: the warm-up is a short load, not a benchmark",
        )
    ready_timeout = None
    if request.HasField("ready_timeout"):
        ready_timeout = request.ready_timeout.ToTimedelta().total_seconds()
        _in_range(context, "ready_timeout", ready_timeout, READY_TIMEOUT_RANGE_S)
    warmup_timeout = DEFAULT_WARMUP_REQUEST_TIMEOUT_S
    if request.HasField("warmup_request_timeout"):
        warmup_timeout = request.warmup_request_timeout.ToTimedelta().total_seconds()
        _in_range(context, "warmup_request_timeout", warmup_timeout, WARMUP_TIMEOUT_RANGE_S)
    return ProfileOptions(
        warmup_requests=requests,
        ready_timeout_s=ready_timeout,
        warmup_request_timeout_s=warmup_timeout,
    )


def _check_services(request: pb.ProfileServicesRequest, context: grpc.ServicerContext) -> None:
    if not request.services:
        _invalid(
            context, "services", "no service to profile", "name at least one service to measure"
        )
    seen: set[tuple[str, str, str, str]] = set()
    for spec in request.services:
        if not spec.realm or not spec.name or not spec.image:
            _invalid(
                context,
                "services",
                "a service to profile has no realm, name or image",
                "send effective specs, as `ozwald profile` does",
            )
        key = (spec.realm, spec.name, spec.variety, spec.profile)
        if key in seen:
            _invalid(
                context,
                "services",
                f"{spec.realm}:{spec.name} (variety {spec.variety or '-'}, profile "
                f"{spec.profile or '-'}) is named twice",
                "name each service, variety and profile once",
            )
        seen.add(key)


def _in_range(
    context: grpc.ServicerContext, field: str, seconds: float, bounds: tuple[float, float]
) -> None:
    low, high = bounds
    if not low <= seconds <= high:
        _invalid(
            context,
            field,
            f"{field} {seconds:g} s is out of range",
            f"ask for between {low:g} s and {high:g} s",
        )


def _invalid(context: grpc.ServicerContext, field: str, message: str, remedy: str) -> NoReturn:
    rpc_status.abort(
        context,
        grpc.StatusCode.INVALID_ARGUMENT,
        error_reason_pb2.ERROR_REASON_INVALID_ARGUMENT,
        message,
        remedy,
        field=field,
    )
    raise AssertionError("unreachable")


def _unimplemented(context: grpc.ServicerContext) -> NoReturn:
    context.abort(grpc.StatusCode.UNIMPLEMENTED, "this agent was started without profiling")
    raise AssertionError("unreachable")
