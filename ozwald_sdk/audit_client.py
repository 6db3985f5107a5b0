"""`AuditClient`: reading, exporting and verifying the orchestrator's audit log.

It dials the orchestrator like FleetClient (the same addresses, TLS options and
defaults), sends the caller's uid so local actions are attributed ("local:uid=N"), and
retries on UNAVAILABLE like every idempotent call. `records()` pages through the log;
`verify()` asks the orchestrator to walk its chain; `verify_export()` checks an export
(`ozwald audit --json` output) here, without the orchestrator, with the same code.
"""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from google.protobuf import json_format
from ozwald.orchestrator.v1 import audit_service_pb2 as pb

from ozwald_sdk.audit_chain import (
    ANCHOR_SOURCE,
    Anchor,
    ChainEntry,
    entry_from_record,
    time_us_of,
    verify_entries,
)
from ozwald_sdk.errors import AuditExportError
from ozwald_sdk.retry import DEFAULT_RETRY, RetryPolicy, call_with_retry
from ozwald_sdk.rpc.audit_service import AuditServiceRpc
from ozwald_sdk.service_client import OrchestratorServiceClient
from ozwald_sdk.target import AgentTarget

DEFAULT_TIMEOUT = 10.0
# The orchestrator reads every record to verify; a large log takes a while.
VERIFY_TIMEOUT = 300.0
PAGE_SIZE = 1000

T = TypeVar("T")


class AuditClient(OrchestratorServiceClient):
    """Blocking client for the orchestrator's AuditService; a context manager.

    `target` is an address, a resolved target or None for $OZWALD_ORCHESTRATOR or the
    orchestrator's default socket. Raises ConnectionConfigError for an unusable address.
    """

    def __init__(
        self,
        target: str | AgentTarget | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        correlation_id: str | None = None,
    ) -> None:
        super().__init__(target, timeout=timeout, retry=retry, correlation_id=correlation_id)
        self._rpc = AuditServiceRpc(self._channel, self.target)

    def records(
        self,
        *,
        since: datetime.datetime | None = None,
        until: datetime.datetime | None = None,
        deployment: str = "",
        host_id: str = "",
        actor: str = "",
        kind: str = "",
        after_sequence: int = 0,
        limit: int | None = None,
        page_size: int = PAGE_SIZE,
        timeout: float | None = None,
    ) -> Iterator[pb.AuditRecord]:
        """Records in sequence order that match every filter given, fetched a page at a
        time as you iterate (each page within `timeout`, the client's when None).

        `actor` is exact ("operator:alice") or a prefix ending in ":" ("operator:");
        `since` is inclusive, `until` exclusive; `limit` caps how many are returned.
        """
        cursor = after_sequence
        left = limit
        while left is None or left > 0:
            request = pb.ListAuditRecordsRequest(
                after_sequence=cursor,
                limit=page_size if left is None else min(page_size, left),
                deployment=deployment,
                host_id=host_id,
                actor=actor,
                kind=kind,
            )
            if since is not None:
                request.since.FromMicroseconds(time_us_of(_aware(since)))
            if until is not None:
                request.until.FromMicroseconds(time_us_of(_aware(until)))
            page = self._within(functools.partial(self._list_page, request), timeout)
            yield from page.records
            if left is not None:
                left -= len(page.records)
            if not page.more or not page.records:
                return
            cursor = page.records[-1].sequence

    def _list_page(
        self, request: pb.ListAuditRecordsRequest, seconds: float
    ) -> pb.ListAuditRecordsResponse:
        return self._rpc.list_audit_records(request, timeout=seconds, metadata=self._metadata)

    def verify(
        self, *, anchor_sequence: int = 0, anchor_hash: str = "", timeout: float | None = None
    ) -> pb.VerifyAuditLogResponse:
        """Have the orchestrator walk the whole chain; `ok` False names the first bad
        record. With an anchor (a head kept from an earlier verify), also require the log
        to still hold that record with that hash. Waits up to VERIFY_TIMEOUT (or the
        client's timeout, if longer) unless `timeout` is given."""
        request = pb.VerifyAuditLogRequest(anchor_sequence=anchor_sequence, anchor_hash=anchor_hash)
        return self._within(
            lambda seconds: self._rpc.verify_audit_log(
                request, timeout=seconds, metadata=self._metadata
            ),
            timeout if timeout is not None else max(self.timeout, VERIFY_TIMEOUT),
        )

    def _within(self, attempt: Callable[[float], T], timeout: float | None) -> T:
        def checked(seconds_left: float) -> T:
            self.target.check_socket()
            return attempt(seconds_left)

        return call_with_retry(
            checked,
            policy=self.retry,
            timeout=self.timeout if timeout is None else timeout,
            idempotent=True,
        )


def record_to_json(record: pb.AuditRecord) -> str:
    """One line of an export: the record in the protobuf JSON mapping, every field, in
    the order the contract numbers them."""
    mapped = json_format.MessageToDict(
        record, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    ordered = {f.name: mapped[f.name] for f in record.DESCRIPTOR.fields if f.name in mapped}
    return json.dumps(ordered, separators=(",", ":"))


def record_from_json(line: str) -> pb.AuditRecord:
    """A record from one export line; AuditExportError when it is not one."""
    try:
        return json_format.Parse(line, pb.AuditRecord())
    except json_format.ParseError as e:
        raise AuditExportError(
            f"not an audit record: {e}",
            remedy="export with `ozwald audit --json > FILE`, one record per line",
        ) from e


def verify_export(
    lines: Iterable[str],
    *,
    anchor_sequence: int = 0,
    anchor_hash: str = "",
    partial: bool = False,
) -> pb.VerifyAuditLogResponse:
    """Check an export (JSON lines, in sequence order) as the orchestrator checks its log.

    A whole export must start at record 1 and have no gaps, so export it without
    filters. `partial` accepts an export that starts later (`ozwald audit --after N
    --json`): its first record's link to the one before is then taken on trust. Raises
    AuditExportError for a line that is not a record.
    """

    def entries() -> Iterator[ChainEntry]:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield entry_from_record(record_from_json(line))
            except AuditExportError as e:
                raise AuditExportError(f"line {number}: {e.message}", remedy=e.remedy) from e

    anchors = [Anchor(anchor_sequence, anchor_hash.lower(), ANCHOR_SOURCE)]
    return verify_entries(entries(), anchors, whole_log=not partial)


def _aware(moment: datetime.datetime) -> datetime.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)
