"""The AgentService RPCs: what the agent answers over gRPC."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

import grpc
from ozwald.agent.v1 import agent_service_pb2, agent_service_pb2_grpc
from ozwald.common.v1 import error_reason_pb2, host_profile_pb2

from ozwald_agent.profiling.profiler import Profiler
from ozwald_agent.profiling.rpcs import ProfilingRpcs
from ozwald_agent.provisioning.provisioner import Provisioner
from ozwald_agent.provisioning.rpcs import ProvisioningRpcs
from ozwald_agent.state.footprints import FootprintStore
from ozwald_agent.state.webhook_deliveries import WebhookDeliveryStore
from ozwald_agent.webhooks.rpcs import WebhookRpcs
from ozwald_sdk import rpc_status

logger = logging.getLogger(__name__)

DEFAULT_WATCH_INTERVAL_S = 5.0
MIN_WATCH_INTERVAL_S = 1.0
MAX_WATCH_INTERVAL_S = 3600.0

ProfileCollector = Callable[[], host_profile_pb2.HostProfile]


class AgentServicer(
    ProvisioningRpcs, ProfilingRpcs, WebhookRpcs, agent_service_pb2_grpc.AgentServiceServicer
):
    """Serves host facts, provisioning and profiling; `shut_down()` ends every open watch
    and cancels every profiling run at once."""

    def __init__(
        self,
        collect_profile: ProfileCollector,
        provisioner: Provisioner,
        *,
        profiler: Profiler | None = None,
        footprints: FootprintStore | None = None,
        webhook_deliveries: WebhookDeliveryStore | None = None,
    ) -> None:
        self._collect_profile = collect_profile
        self._webhook_deliveries = webhook_deliveries
        self._provisioner = provisioner
        self._profiler = profiler
        self._footprints = footprints
        self._lock = threading.Lock()
        self._shutting_down = False
        self._open_streams: set[threading.Event] = set()
        self._cancel_on_shutdown: set[threading.Event] = set()

    def shut_down(self) -> None:
        with self._lock:
            self._shutting_down = True
            for wake in self._open_streams:
                wake.set()
            # A profiling run removes its copy when cancelled; the stream then ends.
            for cancel in list(self._cancel_on_shutdown):
                cancel.set()

    def GetHostProfile(
        self,
        request: agent_service_pb2.GetHostProfileRequest,
        context: grpc.ServicerContext,
    ) -> agent_service_pb2.GetHostProfileResponse:
        return agent_service_pb2.GetHostProfileResponse(profile=self._profile_or_abort(context))

    def WatchHostProfile(
        self,
        request: agent_service_pb2.WatchHostProfileRequest,
        context: grpc.ServicerContext,
    ) -> Iterator[agent_service_pb2.WatchHostProfileResponse]:
        interval = _watch_interval(request, context)
        # Set when the client goes away or the agent shuts down, so a long interval
        # never keeps a worker thread past either.
        wake = threading.Event()
        context.add_callback(wake.set)
        with self._lock:
            self._open_streams.add(wake)
            if self._shutting_down:
                wake.set()
        try:
            sequence = 0
            while not wake.is_set():
                sequence += 1
                yield agent_service_pb2.WatchHostProfileResponse(
                    profile=self._profile_or_abort(context), sequence=sequence
                )
                wake.wait(interval)
        finally:
            with self._lock:
                self._open_streams.discard(wake)
        if self._shutting_down and context.is_active():
            rpc_status.abort(
                context,
                grpc.StatusCode.UNAVAILABLE,
                error_reason_pb2.ERROR_REASON_SHUTTING_DOWN,
                "the agent is shutting down",
                "watch again once the agent has restarted",
            )

    def _profile_or_abort(self, context: grpc.ServicerContext) -> host_profile_pb2.HostProfile:
        try:
            return self._collect_profile()
        except Exception as e:
            # Detectors report their own failures as facts; reaching here is a bug.
            logger.exception("host profile collection failed")
            rpc_status.abort(
                context,
                grpc.StatusCode.INTERNAL,
                error_reason_pb2.ERROR_REASON_HOST_PROFILE_FAILED,
                f"the agent could not collect the host profile: {e}",
                "look at the agent's log for the traceback and report it",
            )


def _watch_interval(
    request: agent_service_pb2.WatchHostProfileRequest, context: grpc.ServicerContext
) -> float:
    if not request.HasField("interval"):
        return DEFAULT_WATCH_INTERVAL_S
    seconds = request.interval.ToTimedelta().total_seconds()
    if not MIN_WATCH_INTERVAL_S <= seconds <= MAX_WATCH_INTERVAL_S:
        rpc_status.abort(
            context,
            grpc.StatusCode.INVALID_ARGUMENT,
            error_reason_pb2.ERROR_REASON_INVALID_ARGUMENT,
            f"watch interval {seconds:g} s is out of range",
            f"ask for an interval between {MIN_WATCH_INTERVAL_S:g} s "
            f"and {MAX_WATCH_INTERVAL_S:g} s",
            field="interval",
        )
    return seconds
