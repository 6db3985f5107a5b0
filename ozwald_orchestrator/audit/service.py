"""AuditService: reading and verifying the audit log, over the unix socket and (role
operator) mutual TLS, like FleetService. Agents may not read it."""

from __future__ import annotations

import asyncio
import datetime
import logging
from typing import Any, Literal, TypeAlias

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from ozwald.common.v1.error_reason_pb2 import ERROR_REASON_INVALID_ARGUMENT
from ozwald.orchestrator.v1 import audit_service_pb2, audit_service_pb2_grpc

from ozwald_orchestrator.audit.log import AuditLog
from ozwald_orchestrator.audit.table import AuditQuery
from ozwald_orchestrator.identity import ROLE_OPERATOR
from ozwald_orchestrator.roles import require_role
from ozwald_orchestrator.rpc_errors import abort
from ozwald_sdk.audit_chain import time_us_of

logger = logging.getLogger(__name__)

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"

# How long a read waits for queued records to be committed before it answers with what
# is committed: a stuck disk must not hang every listing.
FLUSH_WAIT_S = 2.0

_HEX = frozenset("0123456789abcdef")


class AuditServicer(audit_service_pb2_grpc.AuditServiceServicer):
    """AuditService for one AuditLog. `require_operator` guards the TCP listener."""

    def __init__(self, log: AuditLog, *, require_operator: bool) -> None:
        self._log = log
        self._require_operator = require_operator

    async def _authorize(self, context: Context) -> None:
        if self._require_operator:
            await require_role(context, ROLE_OPERATOR, "the audit log")

    async def ListAuditRecords(
        self, request: audit_service_pb2.ListAuditRecordsRequest, context: Context
    ) -> audit_service_pb2.ListAuditRecordsResponse:
        await self._authorize(context)
        since = await _micros(request, "since", context)
        until = await _micros(request, "until", context)
        query = AuditQuery(
            after_sequence=request.after_sequence,
            limit=request.limit,
            since_us=since,
            until_us=until,
            deployment=request.deployment,
            host_id=request.host_id,
            actor=request.actor,
            kind=request.kind,
        )
        # What this caller (or anyone) just did is in the listing, not still queued.
        await self._committed()
        records, more = await asyncio.to_thread(self._log.query, query)
        return audit_service_pb2.ListAuditRecordsResponse(records=records, more=more)

    async def VerifyAuditLog(
        self, request: audit_service_pb2.VerifyAuditLogRequest, context: Context
    ) -> audit_service_pb2.VerifyAuditLogResponse:
        await self._authorize(context)
        anchor_hash = request.anchor_hash.lower()
        if request.anchor_sequence and (len(anchor_hash) != 64 or not set(anchor_hash) <= _HEX):
            await abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                ERROR_REASON_INVALID_ARGUMENT,
                f"the anchor hash {request.anchor_hash[:80]!r} is not a SHA-256 in hex",
                "pass the head_hash a previous `ozwald audit verify` printed, with its "
                "sequence: --anchor SEQUENCE:HASH",
                field="anchor_hash",
            )
        await self._committed()
        response = await asyncio.to_thread(self._log.verify, request.anchor_sequence, anchor_hash)
        if not response.ok:
            logger.warning(
                "audit log verification failed at record %d: %s",
                response.first_bad_sequence,
                response.problem,
            )
        return response

    async def _committed(self) -> None:
        try:
            await asyncio.wait_for(self._log.flushed(), FLUSH_WAIT_S)
        except TimeoutError:
            logger.warning(
                "audit records are not being committed (is the disk full?); answering "
                "with the %d committed so far",
                self._log.durable_sequence,
            )


async def _micros(
    request: audit_service_pb2.ListAuditRecordsRequest,
    field: Literal["since", "until"],
    context: Context,
) -> int | None:
    if not request.HasField(field):
        return None
    stamp: Timestamp = getattr(request, field)
    try:
        return time_us_of(stamp.ToDatetime(tzinfo=datetime.UTC))
    except (ValueError, OverflowError):
        await abort(
            context,
            grpc.StatusCode.INVALID_ARGUMENT,
            ERROR_REASON_INVALID_ARGUMENT,
            f"{field} ({stamp.seconds} s, {stamp.nanos} ns) is not a valid time",
            "give a time between the years 1 and 9999",
            field=field,
        )
