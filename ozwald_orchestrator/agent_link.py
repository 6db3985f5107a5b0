"""AgentLinkService: the one stream each agent keeps open to the orchestrator.

The first message must be a Register from a client certificate with role `agent` whose
common name is the host id claimed. Then every message counts as a sign of life; the
orchestrator's messages (Registered, assignments) go down the stream in order through
the session's outbox. A stream that breaks is simply reopened by the agent: Register
carries everything needed to resume, and a newer stream replaces an older one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, TypeAlias

import grpc
from ozwald.common.v1 import error_reason_pb2
from ozwald.orchestrator.v1 import agent_link_service_pb2, agent_link_service_pb2_grpc

from ozwald_orchestrator.audit.actor import caller
from ozwald_orchestrator.audit.kinds import HOST_REFUSED, agent_actor
from ozwald_orchestrator.audit.trail import set_actor
from ozwald_orchestrator.fleet import Fleet
from ozwald_orchestrator.identity import ROLE_AGENT, peer_identity
from ozwald_orchestrator.rpc_errors import abort
from ozwald_orchestrator.sessions import AgentSession
from ozwald_orchestrator.state import HostRecord

logger = logging.getLogger(__name__)

# How long an agent has to send Register after opening the stream.
REGISTER_TIMEOUT_S = 10.0
# A connection that breaks also reads as the end of the stream, and gRPC cancels the
# call a moment later; the end is the agent's own only if no cancellation follows.
END_OF_STREAM_SETTLE_S = 0.1
AGENT_CLOSED = "the agent closed the stream"

ConnectContext: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


class AgentLinkServicer(agent_link_service_pb2_grpc.AgentLinkServiceServicer):
    """Serves agents' Connect streams for one Fleet."""

    def __init__(self, fleet: Fleet) -> None:
        self._fleet = fleet
        self.shutting_down = False

    # grpc.aio lets a stream handler write through its context and return None, which
    # the generated stub's type (an iterator of responses) does not describe.
    async def Connect(  # type: ignore[override]
        self,
        request_iterator: Any,
        context: ConnectContext,
    ) -> None:
        if self.shutting_down:
            await abort(
                context,
                grpc.StatusCode.UNAVAILABLE,
                error_reason_pb2.ERROR_REASON_SHUTTING_DOWN,
                "the orchestrator is shutting down",
                "reconnect to the restarted orchestrator",
            )
        register = await self._first_register(context)
        await self._check_identity(context, register)
        # What this stream changes is the agent's doing (this task's context only).
        set_actor(agent_actor(register.host_id))
        audit = self._fleet.audit
        session = AgentSession(register.host_id, peer_address(context.peer()))
        record = self._fleet.connect(session, register)
        audit.settle()
        writer = asyncio.create_task(_write(session, context), name=f"link-{session.host_id}")
        why = AGENT_CLOSED
        closed_here = False
        try:
            why = await self._read(session, record, context)
            closed_here = session.closed
        except asyncio.CancelledError:
            why = session.close_reason if session.closed else self._lost(record)
            raise
        finally:
            self._fleet.disconnected(session, why)
            audit.settle()
            session.close(why)
            writer.cancel()
            # A write that failed means the peer is gone, which the read saw too.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer
        if closed_here:
            # Replaced by a newer stream or shut down: say so to an agent still listening.
            await context.abort(grpc.StatusCode.ABORTED, f"stream closed: {why}")

    async def _first_register(self, context: ConnectContext) -> agent_link_service_pb2.Register:
        try:
            first: object = await asyncio.wait_for(context.read(), REGISTER_TIMEOUT_S)
        except TimeoutError:
            await abort(
                context,
                grpc.StatusCode.DEADLINE_EXCEEDED,
                error_reason_pb2.ERROR_REASON_INVALID_ARGUMENT,
                f"no Register within {REGISTER_TIMEOUT_S:g} s of opening the stream",
                "send Register as the first message",
                field="register",
            )
        if first is grpc.aio.EOF or not isinstance(first, agent_link_service_pb2.ConnectRequest):
            await abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                error_reason_pb2.ERROR_REASON_INVALID_ARGUMENT,
                "the stream ended before Register",
                "send Register as the first message",
                field="register",
            )
        if first.WhichOneof("message") != "register" or not first.register.host_id:
            await abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                error_reason_pb2.ERROR_REASON_INVALID_ARGUMENT,
                "the first message of a stream must be a Register with a host_id",
                "send Register (host_id = the certificate's common name) first",
                field="register",
            )
        return first.register

    async def _check_identity(
        self, context: ConnectContext, register: agent_link_service_pb2.Register
    ) -> None:
        identity = peer_identity(context.auth_context())
        claimed = register.host_id
        if (
            identity is not None
            and ROLE_AGENT in identity.roles
            and identity.common_name == claimed
        ):
            return
        if identity is None:
            problem = "the stream carries no client certificate"
        elif ROLE_AGENT not in identity.roles:
            problem = f"the {identity.describe()} is not an agent's"
        else:
            problem = f"the certificate is issued to {identity.common_name!r}"
        logger.warning(
            "refused agent stream claiming host %r from %s: %s",
            claimed,
            context.peer(),
            problem,
            extra={"host_id": claimed},
        )
        self._fleet.audit.record(
            HOST_REFUSED,
            actor=caller(context),
            host_id=claimed,
            after={"reason": problem, "host_id": claimed},
        )
        await abort(
            context,
            grpc.StatusCode.PERMISSION_DENIED,
            error_reason_pb2.ERROR_REASON_HOST_IDENTITY_MISMATCH,
            f"cannot register as host {claimed!r}: {problem}",
            "give the agent a certificate from `ozwald ca issue --role agent` whose common "
            "name is its host id",
            certificate=identity.common_name if identity is not None else "",
            host_id=claimed,
        )

    async def _read(
        self, session: AgentSession, record: HostRecord, context: ConnectContext
    ) -> str:
        fleet = self._fleet
        while True:
            # One message is one step: what it changed is recorded before the next.
            fleet.audit.settle()
            message: object = await context.read()
            if message is grpc.aio.EOF:
                await asyncio.sleep(END_OF_STREAM_SETTLE_S)
                return AGENT_CLOSED
            if session.closed:
                return session.close_reason
            assert isinstance(message, agent_link_service_pb2.ConnectRequest)
            fleet.seen(record)
            kind = message.WhichOneof("message")
            if kind == "heartbeat":
                continue
            if kind == "instances":
                report = message.instances
                fleet.observe(record, report.instances, report.removed)
            elif kind == "footprints":
                fleet.footprints_reported(message.footprints.footprints)
            elif kind == "assignment_result":
                fleet.assignment_result(record, message.assignment_result)
            elif kind == "profile":
                fleet.profile_reported(record, message.profile.profile)
            elif kind == "register":
                await abort(
                    context,
                    grpc.StatusCode.INVALID_ARGUMENT,
                    error_reason_pb2.ERROR_REASON_INVALID_ARGUMENT,
                    "Register is only the first message of a stream",
                    "open a new stream to register again",
                    field="register",
                )

    def _lost(self, record: HostRecord) -> str:
        """Why a stream that gRPC cancelled ended, in words: the agent did not end it."""
        fleet = self._fleet
        silent = fleet.clock.monotonic() - record.last_seen
        if silent > 2 * fleet.settings.health.heartbeat_interval_s:
            return (
                f"the connection was lost after {silent:.0f} s without a word from the agent "
                "(its host is cut off from the network or down: keepalive pings went "
                "unanswered)"
            )
        return (
            "the connection was lost without the agent closing the stream (its process "
            "ended or was killed, or the network dropped the connection)"
        )


async def _write(session: AgentSession, context: ConnectContext) -> None:
    while True:
        message = await session.outbox.get()
        if message is None:
            return
        await context.write(message)


def peer_address(peer: str) -> str:
    """gRPC's "ipv4:10.0.0.7:51234" or "ipv6:[::1]:51234" as the address alone."""
    for scheme in ("ipv4:", "ipv6:"):
        if peer.startswith(scheme):
            return peer.removeprefix(scheme)
    return peer
