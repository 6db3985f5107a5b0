"""AgentService's webhook parts: ListWebhookDeliveries, and how a veto goes on the wire."""

from __future__ import annotations

from typing import NoReturn

import grpc
from ozwald.agent.v1 import agent_service_pb2
from ozwald.common.v1 import error_reason_pb2

from ozwald_agent.state.webhook_deliveries import WebhookDeliveryStore
from ozwald_agent.webhooks.dispatcher import WebhookVetoedError
from ozwald_sdk import rpc_status

pb = agent_service_pb2
MAX_LIMIT = 10_000


class WebhookRpcs:
    """Mixed into AgentServicer; `_webhook_deliveries` is the delivery log (None: none)."""

    _webhook_deliveries: WebhookDeliveryStore | None

    def ListWebhookDeliveries(
        self, request: pb.ListWebhookDeliveriesRequest, context: grpc.ServicerContext
    ) -> pb.ListWebhookDeliveriesResponse:
        if self._webhook_deliveries is None:
            return pb.ListWebhookDeliveriesResponse()
        return pb.ListWebhookDeliveriesResponse(
            deliveries=self._webhook_deliveries.list(
                realm=request.realm,
                service=request.service,
                limit=min(request.limit, MAX_LIMIT),
            )
        )


def webhook_vetoed(context: grpc.ServicerContext, error: WebhookVetoedError) -> NoReturn:
    veto = error.veto
    remedy = (
        f"make webhook '{veto.hook}' reachable, or set its failure_policy to fail-open"
        if veto.failed
        else f"address what webhook '{veto.hook}' objects to, then try again; "
        "`ozwald webhooks deliveries` shows its answers"
    )
    rpc_status.abort(
        context,
        grpc.StatusCode.FAILED_PRECONDITION,
        error_reason_pb2.ERROR_REASON_WEBHOOK_VETOED,
        f"nothing changed: {veto.message}",
        remedy,
        hook=veto.hook,
        service=veto.service,
        event=veto.event,
        hook_reason=veto.reason,
    )
