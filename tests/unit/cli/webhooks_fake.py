"""ListWebhookDeliveries for the in-memory fake agent: serves the deliveries a test sets."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from ozwald.agent.v1 import agent_service_pb2 as pb
from ozwald.agent.v1 import webhook_delivery_pb2 as W


@dataclass
class WebhooksState:
    deliveries: list[W.WebhookDelivery] = field(default_factory=list)
    """Newest first, as the agent answers."""
    requests: list[pb.ListWebhookDeliveriesRequest] = field(default_factory=list)
    time_remaining: list[float | None] = field(default_factory=list)
    """Seconds each request had left before its deadline, as the server saw it."""


class WebhooksFake:
    webhooks: WebhooksState

    def ListWebhookDeliveries(
        self, request: pb.ListWebhookDeliveriesRequest, context: grpc.ServicerContext
    ) -> pb.ListWebhookDeliveriesResponse:
        self.webhooks.requests.append(request)
        self.webhooks.time_remaining.append(context.time_remaining())
        chosen = [
            d
            for d in self.webhooks.deliveries
            if (not request.realm or d.realm == request.realm)
            and (not request.service or d.service == request.service)
        ]
        return pb.ListWebhookDeliveriesResponse(deliveries=chosen[: request.limit or 50])
