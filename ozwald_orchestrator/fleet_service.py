"""FleetService: the operators' API, over the unix socket and (role operator) mutual TLS."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import grpc
from ozwald.common.v1 import error_reason_pb2
from ozwald.orchestrator.v1 import fleet_service_pb2, fleet_service_pb2_grpc, fleet_state_pb2

from ozwald_orchestrator.audit.actor import caller
from ozwald_orchestrator.audit.log import AuditWriteError
from ozwald_orchestrator.audit.trail import set_actor
from ozwald_orchestrator.drain import DEFAULT_DEADLINE_S as DEFAULT_DRAIN_DEADLINE_S
from ozwald_orchestrator.fleet import Fleet
from ozwald_orchestrator.identity import ROLE_OPERATOR
from ozwald_orchestrator.roles import require_role
from ozwald_orchestrator.rpc_errors import OrchestratorError, abort, abort_with

logger = logging.getLogger(__name__)

# Stored events read per store query while a watcher catches up.
EVENT_PAGE = 1000
# How long a call that changed something waits for the audit log to commit its records
# before it answers (docs/audit.md: an acknowledged action is on record).
AUDIT_COMMIT_WAIT_S = 5.0

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


class FleetServicer(fleet_service_pb2_grpc.FleetServiceServicer):
    """FleetService for one Fleet. `require_operator` guards the TCP listener."""

    def __init__(self, fleet: Fleet, *, require_operator: bool) -> None:
        self._fleet = fleet
        self._require_operator = require_operator

    async def _authorize(self, context: Context) -> None:
        if self._require_operator:
            await require_role(context, ROLE_OPERATOR, "FleetService")
        # What this call changes is recorded as the caller's (this call's context only).
        set_actor(caller(context))

    async def _recorded(self, context: Context) -> None:
        """Answer only once the audit log holds what this call changed: every call that
        may change something awaits this before it answers."""
        try:
            await asyncio.wait_for(self._fleet.audit.committed(), AUDIT_COMMIT_WAIT_S)
        except (TimeoutError, AuditWriteError) as e:
            logger.error("the audit log did not commit an operator's change: %s", e)
            await context.abort(
                grpc.StatusCode.INTERNAL,
                "the change was made, but the audit log could not record it within "
                f"{AUDIT_COMMIT_WAIT_S:g} s (is the disk of the orchestrator's state "
                "directory full?); check the orchestrator's log, then `ozwald audit`",
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
            response = await self._fleet.apply(request.deployments, request.realms)
        except OrchestratorError as e:
            await abort_with(context, e)
        await self._recorded(context)
        return response

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

    async def ScaleDeployment(
        self, request: fleet_service_pb2.ScaleDeploymentRequest, context: Context
    ) -> fleet_service_pb2.ScaleDeploymentResponse:
        await self._authorize(context)
        try:
            scaled = await self._fleet.scale(request.name, request.replicas)
        except OrchestratorError as e:
            await abort_with(context, e)
        await self._recorded(context)
        return scaled

    async def CordonHost(
        self, request: fleet_service_pb2.CordonHostRequest, context: Context
    ) -> fleet_service_pb2.CordonHostResponse:
        await self._authorize(context)
        try:
            cordoned = await self._fleet.cordon(request.host_id)
        except OrchestratorError as e:
            await abort_with(context, e)
        await self._recorded(context)
        return fleet_service_pb2.CordonHostResponse(host=cordoned)

    async def UncordonHost(
        self, request: fleet_service_pb2.UncordonHostRequest, context: Context
    ) -> fleet_service_pb2.UncordonHostResponse:
        await self._authorize(context)
        try:
            uncordoned = await self._fleet.uncordon(request.host_id)
        except OrchestratorError as e:
            await abort_with(context, e)
        await self._recorded(context)
        return fleet_service_pb2.UncordonHostResponse(host=uncordoned)

    async def GetRollout(
        self, request: fleet_service_pb2.GetRolloutRequest, context: Context
    ) -> fleet_service_pb2.GetRolloutResponse:
        await self._authorize(context)
        try:
            rollout = self._fleet.rollout(request.deployment)
        except OrchestratorError as e:
            await abort_with(context, e)
        return fleet_service_pb2.GetRolloutResponse(rollout=rollout)

    async def PauseRollout(
        self, request: fleet_service_pb2.PauseRolloutRequest, context: Context
    ) -> fleet_service_pb2.PauseRolloutResponse:
        await self._authorize(context)
        try:
            rollout = await self._fleet.pause_rollout(request.deployment)
        except OrchestratorError as e:
            await abort_with(context, e)
        await self._recorded(context)
        return fleet_service_pb2.PauseRolloutResponse(rollout=rollout)

    async def ResumeRollout(
        self, request: fleet_service_pb2.ResumeRolloutRequest, context: Context
    ) -> fleet_service_pb2.ResumeRolloutResponse:
        await self._authorize(context)
        try:
            rollout = await self._fleet.resume_rollout(request.deployment)
        except OrchestratorError as e:
            await abort_with(context, e)
        await self._recorded(context)
        return fleet_service_pb2.ResumeRolloutResponse(rollout=rollout)

    async def PromoteRollout(
        self, request: fleet_service_pb2.PromoteRolloutRequest, context: Context
    ) -> fleet_service_pb2.PromoteRolloutResponse:
        await self._authorize(context)
        try:
            rollout = await self._fleet.promote_rollout(request.deployment)
        except OrchestratorError as e:
            await abort_with(context, e)
        await self._recorded(context)
        return fleet_service_pb2.PromoteRolloutResponse(rollout=rollout)

    async def UndoRollout(
        self, request: fleet_service_pb2.UndoRolloutRequest, context: Context
    ) -> fleet_service_pb2.UndoRolloutResponse:
        await self._authorize(context)
        try:
            response = await self._fleet.undo_rollout(request.deployment, request.to_version)
        except OrchestratorError as e:
            await abort_with(context, e)
        await self._recorded(context)
        return response

    async def DrainHost(
        self, request: fleet_service_pb2.DrainHostRequest, context: Context
    ) -> fleet_service_pb2.DrainHostResponse:
        await self._authorize(context)
        deadline_s = (
            request.deadline.ToTimedelta().total_seconds()
            if request.HasField("deadline")
            else DEFAULT_DRAIN_DEADLINE_S
        )
        if deadline_s <= 0:
            await abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                error_reason_pb2.ERROR_REASON_INVALID_ARGUMENT,
                f"a drain deadline of {deadline_s:g} s leaves no time to move anything",
                "give a positive deadline, e.g. --deadline 10m",
                field="deadline",
            )
        try:
            host = await self._fleet.drain(request.host_id, deadline_s)
        except OrchestratorError as e:
            await abort_with(context, e)
        await self._recorded(context)
        return fleet_service_pb2.DrainHostResponse(host=host)

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
