"""FleetService: the operators' API, over the unix socket and (role operator) mutual TLS."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import grpc
from ozwald.orchestrator.v1 import fleet_service_pb2, fleet_service_pb2_grpc, fleet_state_pb2

from ozwald_orchestrator.fleet import Fleet
from ozwald_orchestrator.identity import ROLE_OPERATOR, peer_identity
from ozwald_orchestrator.rpc_errors import OrchestratorError, abort_with

logger = logging.getLogger(__name__)

# Stored events read per store query while a watcher catches up.
EVENT_PAGE = 1000

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


class FleetServicer(fleet_service_pb2_grpc.FleetServiceServicer):
    """FleetService for one Fleet. `require_operator` guards the TCP listener."""

    def __init__(self, fleet: Fleet, *, require_operator: bool) -> None:
        self._fleet = fleet
        self._require_operator = require_operator

    async def _authorize(self, context: Context) -> None:
        if not self._require_operator:
            return
        identity = peer_identity(context.auth_context())
        if identity is not None and ROLE_OPERATOR in identity.roles:
            return
        who = identity.describe() if identity is not None else "a caller without a certificate"
        await context.abort(
            grpc.StatusCode.PERMISSION_DENIED,
            f"FleetService over TCP is for operators, and {who} is not one; use a certificate "
            "from `ozwald ca issue --role operator`, or the orchestrator's unix socket",
        )

    async def PlanDeployments(
        self, request: fleet_service_pb2.PlanDeploymentsRequest, context: Context
    ) -> fleet_service_pb2.PlanDeploymentsResponse:
        await self._authorize(context)
        try:
            return self._fleet.plan(request.deployments, request.realms)
        except OrchestratorError as e:
            await abort_with(context, e)

    async def ApplyDeployments(
        self, request: fleet_service_pb2.ApplyDeploymentsRequest, context: Context
    ) -> fleet_service_pb2.ApplyDeploymentsResponse:
        await self._authorize(context)
        try:
            return await self._fleet.apply(request.deployments, request.realms)
        except OrchestratorError as e:
            await abort_with(context, e)

    async def ListDeployments(
        self, request: fleet_service_pb2.ListDeploymentsRequest, context: Context
    ) -> fleet_service_pb2.ListDeploymentsResponse:
        await self._authorize(context)
        fleet = self._fleet
        return fleet_service_pb2.ListDeploymentsResponse(
            deployments=[fleet.state.deployments[n] for n in sorted(fleet.state.deployments)],
            instances=fleet.instances(),
        )

    async def GetDeployment(
        self, request: fleet_service_pb2.GetDeploymentRequest, context: Context
    ) -> fleet_service_pb2.GetDeploymentResponse:
        await self._authorize(context)
        try:
            deployment = self._fleet.deployment(request.name)
        except OrchestratorError as e:
            await abort_with(context, e)
        return fleet_service_pb2.GetDeploymentResponse(
            deployment=deployment, instances=self._fleet.instances(deployment=request.name)
        )

    async def ListInstances(
        self, request: fleet_service_pb2.ListInstancesRequest, context: Context
    ) -> fleet_service_pb2.ListInstancesResponse:
        await self._authorize(context)
        return fleet_service_pb2.ListInstancesResponse(
            instances=self._fleet.instances(request.deployment, request.host_id)
        )

    async def ListHosts(
        self, request: fleet_service_pb2.ListHostsRequest, context: Context
    ) -> fleet_service_pb2.ListHostsResponse:
        await self._authorize(context)
        return fleet_service_pb2.ListHostsResponse(hosts=self._fleet.hosts())

    async def ExplainDeployment(
        self, request: fleet_service_pb2.ExplainDeploymentRequest, context: Context
    ) -> fleet_service_pb2.ExplainDeploymentResponse:
        await self._authorize(context)
        try:
            return await self._fleet.explain(request.name)
        except OrchestratorError as e:
            await abort_with(context, e)

    async def GetDrift(
        self, request: fleet_service_pb2.GetDriftRequest, context: Context
    ) -> fleet_service_pb2.GetDriftResponse:
        await self._authorize(context)
        return fleet_service_pb2.GetDriftResponse(items=self._fleet.drift())

    async def WatchEvents(
        self, request: fleet_service_pb2.WatchEventsRequest, context: Context
    ) -> AsyncIterator[fleet_service_pb2.WatchEventsResponse]:
        await self._authorize(context)
        events = self._fleet.events
        # Subscribed before reading the store: nothing stored in between is missed, and
        # what both deliver is skipped by its sequence.
        subscription = events.subscribe()
        last = request.after_sequence
        try:
            async for event in self._stored(last):
                last = event.sequence
                yield fleet_service_pb2.WatchEventsResponse(event=event)
            if request.stored_only:
                return
            while True:
                if subscription.overflowed and subscription.queue.empty():
                    # Fell too far behind: start over from the store where it stopped.
                    events.unsubscribe(subscription)
                    subscription = events.subscribe()
                    async for event in self._stored(last):
                        last = event.sequence
                        yield fleet_service_pb2.WatchEventsResponse(event=event)
                    continue
                event = await subscription.queue.get()
                if event.sequence <= last:
                    continue
                last = event.sequence
                yield fleet_service_pb2.WatchEventsResponse(event=event)
        finally:
            events.unsubscribe(subscription)

    async def _stored(self, after: int) -> AsyncIterator[fleet_state_pb2.FleetEvent]:
        while True:
            page = await self._fleet.read_events(after, EVENT_PAGE)
            for event in page:
                yield event
            if len(page) < EVENT_PAGE:
                return
            after = page[-1].sequence
