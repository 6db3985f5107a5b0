"""The audit log's hash chain: how a record's hash is computed and how a chain is checked.

The orchestrator writes and verifies its log with this module, and a client checks an
export (`ozwald audit --json > FILE`, then `ozwald audit verify --file FILE`) with the
same code, so the two can never disagree about the encoding.

A record's hash is the SHA-256 of its canonical encoding: the JSON object of its fields
(`before` and `after` as their stored JSON text, the time as integer microseconds), keys
sorted, no whitespace, non-ASCII escaped. That encoding is injective: two records that
differ in any field, however slightly, encode differently. `prev_hash` is among the
fields, so each hash also covers every record before it. The first record's prev_hash is
GENESIS_HASH.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from ozwald.orchestrator.v1 import audit_service_pb2

GENESIS_HASH = "0" * 64

AuditBreak = audit_service_pb2.AuditBreak


@dataclass(frozen=True)
class ChainEntry:
    """One stored record, exactly the values its hash covers plus the hash itself."""

    sequence: int
    time_us: int
    actor: str
    kind: str
    deployment: str
    host_id: str
    instance: str
    before_json: str
    after_json: str
    prev_hash: str
    hash: str


def canonical_json(value: Any) -> str:
    """`value` (a JSON-able structure or a protobuf message) as canonical JSON text:
    sorted keys, no whitespace; "" for None. Raises ValueError for what JSON cannot
    hold (NaN, a set, an object)."""
    if value is None:
        return ""
    if isinstance(value, Message):
        value = json_format.MessageToDict(value, preserving_proto_field_name=True)
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"audit state must be JSON (dicts, lists, text, numbers): {e}") from e


def entry_digest(
    *,
    sequence: int,
    time_us: int,
    actor: str,
    kind: str,
    deployment: str,
    host_id: str,
    instance: str,
    before_json: str,
    after_json: str,
    prev_hash: str,
) -> str:
    """Lowercase hex SHA-256 of a record's canonical encoding (docs/audit.md)."""
    document = {
        "actor": actor,
        "after": after_json,
        "before": before_json,
        "deployment": deployment,
        "host_id": host_id,
        "instance": instance,
        "kind": kind,
        "prev_hash": prev_hash,
        "sequence": sequence,
        "time_us": time_us,
    }
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(encoded.encode("ascii")).hexdigest()


def digest_of(entry: ChainEntry) -> str:
    """What `entry.hash` should be."""
    return entry_digest(
        sequence=entry.sequence,
        time_us=entry.time_us,
        actor=entry.actor,
        kind=entry.kind,
        deployment=entry.deployment,
        host_id=entry.host_id,
        instance=entry.instance,
        before_json=entry.before_json,
        after_json=entry.after_json,
        prev_hash=entry.prev_hash,
    )


def entry_from_record(record: audit_service_pb2.AuditRecord) -> ChainEntry:
    return ChainEntry(
        sequence=record.sequence,
        time_us=record.time.seconds * 1_000_000 + record.time.nanos // 1000,
        actor=record.actor,
        kind=record.kind,
        deployment=record.deployment,
        host_id=record.host_id,
        instance=record.instance,
        before_json=record.before_json,
        after_json=record.after_json,
        prev_hash=record.prev_hash,
        hash=record.hash,
    )


def record_from_entry(entry: ChainEntry) -> audit_service_pb2.AuditRecord:
    record = audit_service_pb2.AuditRecord(
        sequence=entry.sequence,
        actor=entry.actor,
        kind=entry.kind,
        deployment=entry.deployment,
        host_id=entry.host_id,
        instance=entry.instance,
        before_json=entry.before_json,
        after_json=entry.after_json,
        prev_hash=entry.prev_hash,
        hash=entry.hash,
    )
    seconds, micros = divmod(entry.time_us, 1_000_000)
    record.time.seconds = seconds
    record.time.nanos = micros * 1000
    return record


def time_us_of(moment: datetime.datetime) -> int:
    """Integer microseconds since the epoch, computed without floating point."""
    delta = moment - datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True)
class ChainBreak:
    """Where and how a chain is broken."""

    sequence: int
    kind: AuditBreak.ValueType
    problem: str


@dataclass(frozen=True)
class Anchor:
    """A record known from elsewhere: the log must still hold `sequence` with `hash`.
    `source` names where it came from in messages ("the checkpoint", "the anchor")."""

    sequence: int
    hash: str
    source: str


class ChainWalker:
    """Checks records fed in sequence order; remembers the first break.

    `first_sequence` is where the walk starts (1 for a whole log). A walk that starts
    later (an export of a later part) takes the first record's prev_hash on trust.
    """

    def __init__(self, *, first_sequence: int = 1) -> None:
        self._expected = first_sequence
        self._previous_hash: str | None = GENESIS_HASH if first_sequence == 1 else None
        self.checked = 0
        self.head_sequence = 0
        self.head_hash = GENESIS_HASH
        self.broken: ChainBreak | None = None
        self._hashes: dict[int, str] = {}
        self._watched: set[int] = set()

    def watch(self, sequences: Iterable[int]) -> None:
        """Remember the hashes of these sequences for `check_anchor`."""
        self._watched.update(sequences)

    def feed(self, entry: ChainEntry) -> bool:
        """Check the next record; False (and `broken` set) at the first break."""
        if self.broken is not None:
            return False
        if entry.sequence != self._expected:
            if entry.sequence > self._expected:
                return self._missing(entry.sequence)
            # Named by the position it took: a forged number may be 0 or negative.
            return self._break(
                self._expected,
                AuditBreak.AUDIT_BREAK_CHAIN_MISMATCH,
                f"where record {self._expected} should be, there is a record numbered "
                f"{entry.sequence}; records are out of order or repeated",
            )
        if self._previous_hash is not None and entry.prev_hash != self._previous_hash:
            return self._break(
                entry.sequence,
                AuditBreak.AUDIT_BREAK_CHAIN_MISMATCH,
                f"record {entry.sequence}: its prev_hash is not the hash of record "
                f"{entry.sequence - 1}; records were reordered, replaced or forged",
            )
        if digest_of(entry) != entry.hash:
            return self._break(
                entry.sequence,
                AuditBreak.AUDIT_BREAK_HASH_MISMATCH,
                f"record {entry.sequence}: the stored hash does not match its contents; "
                "a field was changed after it was written",
            )
        self.checked += 1
        self._expected = entry.sequence + 1
        self._previous_hash = entry.hash
        self.head_sequence = entry.sequence
        self.head_hash = entry.hash
        if entry.sequence in self._watched:
            self._hashes[entry.sequence] = entry.hash
        return True

    def unreadable(self, sequence: int | None, why: str) -> bool:
        """The next stored record could not be decoded into a ChainEntry; `sequence` is
        its number when that much could be read."""
        if self.broken is not None:
            return False
        if sequence is not None and sequence > self._expected:
            return self._missing(sequence)
        return self._break(
            self._expected,
            AuditBreak.AUDIT_BREAK_UNREADABLE,
            f"record {self._expected} cannot be read ({why}); it was changed after it was written",
        )

    def _missing(self, found: int) -> bool:
        missing = (
            f"record {self._expected} is missing"
            if found == self._expected + 1
            else f"records {self._expected} to {found - 1} are missing"
        )
        return self._break(
            self._expected,
            AuditBreak.AUDIT_BREAK_MISSING_RECORD,
            f"{missing} (record {found} follows record {self._expected - 1}); records were deleted",
        )

    def check_anchor(self, anchor: Anchor) -> bool:
        """After the last record: the log must still hold the anchor's record and hash."""
        if self.broken is not None or anchor.sequence == 0:
            return self.broken is None
        if anchor.sequence > self.head_sequence:
            return self._break(
                self.head_sequence + 1,
                AuditBreak.AUDIT_BREAK_TRUNCATED,
                f"the log ends at record {self.head_sequence}, but {anchor.source} says "
                f"record {anchor.sequence} was written; records were cut off the end",
            )
        kept = self._hashes.get(anchor.sequence)
        if kept is None:
            # Only a walk that started after the anchor lacks it: nothing to compare.
            return True
        if kept != anchor.hash.lower():
            return self._break(
                anchor.sequence,
                AuditBreak.AUDIT_BREAK_ANCHOR_MISMATCH,
                f"record {anchor.sequence} has hash {kept[:16]}..., but {anchor.source} "
                f"says {anchor.hash[:16]}...; the log was rewritten",
            )
        return True

    def _break(self, sequence: int, kind: AuditBreak.ValueType, problem: str) -> bool:
        self.broken = ChainBreak(sequence, kind, problem)
        return False


def verify_entries(
    entries: Iterable[ChainEntry], anchors: Iterable[Anchor] = (), *, whole_log: bool = True
) -> audit_service_pb2.VerifyAuditLogResponse:
    """Walk `entries` (in stored order) and the anchors; the answer VerifyAuditLog gives.

    A whole log must start at record 1. A part of one (`whole_log` False: an export
    made with --after) is checked from its first record on, whose link to the record
    before it is taken on trust.
    """
    anchor_list = [a for a in anchors if a.sequence > 0]
    iterator = iter(entries)
    first = next(iterator, None)
    start = 1 if whole_log or first is None else max(1, first.sequence)
    walker = ChainWalker(first_sequence=start)
    walker.watch(a.sequence for a in anchor_list)
    if first is not None and walker.feed(first):
        for entry in iterator:
            if not walker.feed(entry):
                break
    for anchor in anchor_list:
        if not walker.check_anchor(anchor):
            break
    return response_of(walker, anchor_list)


def response_of(
    walker: ChainWalker, anchors: Iterable[Anchor] = ()
) -> audit_service_pb2.VerifyAuditLogResponse:
    response = audit_service_pb2.VerifyAuditLogResponse(
        ok=walker.broken is None,
        records_checked=walker.checked,
        head_sequence=walker.head_sequence,
        head_hash=walker.head_hash,
    )
    for anchor in anchors:
        if anchor.source == CHECKPOINT_SOURCE:
            response.checkpoint_sequence = anchor.sequence
    if walker.broken is not None:
        response.first_bad_sequence = walker.broken.sequence
        response.break_kind = walker.broken.kind
        response.problem = walker.broken.problem
    return response


CHECKPOINT_SOURCE = "the orchestrator's head checkpoint"
ANCHOR_SOURCE = "the anchor given"


def parse_state(text: str) -> Any:
    """`before_json` / `after_json` parsed; None for the empty string."""
    return json.loads(text) if text else None
