"""AgentService's provisioning RPCs: wire format in, Provisioner call, wire format out."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NoReturn

import grpc
from google.protobuf import any_pb2
from grpc_status import rpc_status as grpc_rpc_status
from ozwald.agent.v1 import agent_service_pb2, service_scope_pb2
from ozwald.common.v1 import error_reason_pb2

from ozwald_agent.provisioning.provisioner import (
    AdmissionRefusedError,
    Provisioner,
    ServiceNotFoundError,
)
from ozwald_agent.runtime.errors import ContainerRuntimeError, EngineUnavailableError
from ozwald_agent.webhooks.dispatcher import WebhookVetoedError
from ozwald_agent.webhooks.rpcs import webhook_vetoed
from ozwald_sdk import rpc_status

pb = agent_service_pb2


class ProvisioningRpcs:
    """Mixed into AgentServicer; `_provisioner` does the work."""

    _provisioner: Provisioner

    def PlanServices(
        self, request: pb.PlanServicesRequest, context: grpc.ServicerContext
    ) -> pb.PlanServicesResponse:
        try:
            return pb.PlanServicesResponse(
                plan=self._provisioner.plan(list(request.services), request.scope)
            )
        except ContainerRuntimeError as e:
            runtime_unavailable(context, e)

    def ApplyServices(
        self, request: pb.ApplyServicesRequest, context: grpc.ServicerContext
    ) -> pb.ApplyServicesResponse:
        if request.scope == service_scope_pb2.SERVICE_SCOPE_FLEET:
            _fleet_scope_refused(context)
        try:
            admitted, sequence, generation = self._provisioner.apply(
                list(request.services), request.scope
            )
        except AdmissionRefusedError as e:
            admission_refused(context, e)
        except WebhookVetoedError as e:
            webhook_vetoed(context, e)
        except ContainerRuntimeError as e:
            runtime_unavailable(context, e)
        return pb.ApplyServicesResponse(
            plan=admitted, event_sequence=sequence, generation=generation
        )

    def StopServices(
        self, request: pb.StopServicesRequest, context: grpc.ServicerContext
    ) -> pb.StopServicesResponse:
        try:
            stopping, sequence = self._provisioner.stop_services(list(request.services))
        except ServiceNotFoundError as e:
            _not_found(context, e)
        except WebhookVetoedError as e:
            webhook_vetoed(context, e)
        return pb.StopServicesResponse(stopping=stopping, event_sequence=sequence)

    def ListServices(
        self, request: pb.ListServicesRequest, context: grpc.ServicerContext
    ) -> pb.ListServicesResponse:
        statuses, sequence = self._provisioner.statuses(request.realm)
        return pb.ListServicesResponse(instances=statuses, event_sequence=sequence)

    def WatchServices(
        self, request: pb.WatchServicesRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.WatchServicesResponse]:
        for event in self._provisioner.watch(
            request.after_sequence, request.realm, context.is_active
        ):
            yield pb.WatchServicesResponse(event=event)

    def StreamServiceLogs(
        self, request: pb.StreamServiceLogsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.StreamServiceLogsResponse]:
        try:
            lines = self._provisioner.logs(request.service, request.tail_lines, request.follow)
        except ServiceNotFoundError as e:
            _not_found(context, e)
        except ContainerRuntimeError as e:
            runtime_unavailable(context, e)
        close = getattr(lines, "close", None)
        if close is not None:
            context.add_callback(close)
        for line in lines:
            yield pb.StreamServiceLogsResponse(data=f"{line}\n".encode())


def admission_refused(
    context: grpc.ServicerContext,
    error: AdmissionRefusedError,
    outcome: str = "nothing changed",
    remedy: str = "see each refusal's remedy (`ozwald update_services --plan` lists them all)",
) -> NoReturn:
    """Fails the call with ADMISSION_REFUSED and the refused plan in the status details."""
    refusals = error.plan.refusals
    first = refusals[0].message if refusals else "admission refused the update"
    more = f" (and {len(refusals) - 1} more)" if len(refusals) > 1 else ""
    status = rpc_status.status_error(
        grpc.StatusCode.FAILED_PRECONDITION,
        error_reason_pb2.ERROR_REASON_ADMISSION_REFUSED,
        f"{outcome}: {first}{more}",
        remedy,
    )
    packed = any_pb2.Any()
    packed.Pack(error.plan)
    status.details.append(packed)
    context.abort_with_status(grpc_rpc_status.to_status(status))
    raise AssertionError("unreachable")  # abort_with_status raises


def _fleet_scope_refused(context: grpc.ServicerContext) -> NoReturn:
    rpc_status.abort(
        context,
        grpc.StatusCode.INVALID_ARGUMENT,
        error_reason_pb2.ERROR_REASON_INVALID_ARGUMENT,
        "the FLEET set is the orchestrator's: only the agent's orchestrator link "
        "replaces it, nothing changed",
        "change fleet services with `ozwald apply` against the orchestrator; apply "
        "local services with the DYNAMIC scope",
    )


def _not_found(context: grpc.ServicerContext, error: ServiceNotFoundError) -> NoReturn:
    rpc_status.abort(
        context,
        grpc.StatusCode.NOT_FOUND,
        error_reason_pb2.ERROR_REASON_SERVICE_NOT_FOUND,
        str(error),
        "`ozwald status` lists the services this agent knows",
        service=f"{error.realm}:{error.name}",
    )


def runtime_unavailable(context: grpc.ServicerContext, error: ContainerRuntimeError) -> NoReturn:
    remedy = error.remedy or (
        "start the Docker Engine (make docker, or systemctl start docker)"
        if isinstance(error, EngineUnavailableError)
        else ""
    )
    rpc_status.abort(
        context,
        grpc.StatusCode.FAILED_PRECONDITION,
        error_reason_pb2.ERROR_REASON_CONTAINER_RUNTIME_UNAVAILABLE,
        f"the container engine failed: {error.message}",
        remedy or "look at the agent's log",
    )
