"""The audit chain's encoding is a contract: every stored hash and every export depends
on it, so it is pinned here byte for byte, and walks over exports find each break."""

from __future__ import annotations

import hashlib

from ozwald.orchestrator.v1.audit_service_pb2 import AuditBreak

from ozwald_sdk.audit_chain import (
    ANCHOR_SOURCE,
    GENESIS_HASH,
    Anchor,
    ChainEntry,
    canonical_json,
    entry_digest,
    entry_from_record,
    record_from_entry,
    verify_entries,
)


def test_the_hash_is_sha256_of_the_documented_encoding() -> None:
    documented = (
        '{"actor":"operator:zo\\u00eb","after":"{\\"replicas\\":3}",'
        '"before":"{\\"replicas\\":2}","deployment":"embed","host_id":"","instance":"",'
        '"kind":"deployment-updated","prev_hash":"' + GENESIS_HASH + '","sequence":1,'
        '"time_us":1795773498529705}'
    )
    assert (
        entry_digest(
            sequence=1,
            time_us=1795773498529705,
            actor="operator:zoë",
            kind="deployment-updated",
            deployment="embed",
            host_id="",
            instance="",
            before_json='{"replicas":2}',
            after_json='{"replicas":3}',
            prev_hash=GENESIS_HASH,
        )
        == hashlib.sha256(documented.encode("ascii")).hexdigest()
    )


def test_canonical_json_sorts_keys_drops_whitespace_and_escapes() -> None:
    assert canonical_json({"b": [1, {"d": 2, "c": "é"}], "a": None}) == (
        '{"a":null,"b":[1,{"c":"\\u00e9","d":2}]}'
    )
    assert canonical_json(None) == ""


def _chain(count: int) -> list[ChainEntry]:
    entries: list[ChainEntry] = []
    previous = GENESIS_HASH
    for n in range(1, count + 1):
        fields = dict(
            sequence=n,
            time_us=1_000_000 * n + 7,
            actor="orchestrator",
            kind="host-joined",
            deployment="",
            host_id=f"h{n}",
            instance="",
            before_json="",
            after_json=canonical_json({"n": n}),
            prev_hash=previous,
        )
        previous = entry_digest(**fields)  # type: ignore[arg-type]
        entries.append(ChainEntry(**fields, hash=previous))  # type: ignore[arg-type]
    return entries


def test_records_survive_the_round_trip_through_the_contract() -> None:
    for entry in _chain(3):
        assert entry_from_record(record_from_entry(entry)) == entry


def test_walks_find_each_kind_of_break() -> None:
    chain = _chain(5)
    assert verify_entries(chain).ok
    assert verify_entries([]).ok

    dropped = verify_entries(chain[:2] + chain[3:])
    assert (dropped.first_bad_sequence, dropped.break_kind) == (
        3,
        AuditBreak.AUDIT_BREAK_MISSING_RECORD,
    )
    repeated = verify_entries(chain[:3] + chain[2:])
    assert (repeated.first_bad_sequence, repeated.break_kind) == (
        4,
        AuditBreak.AUDIT_BREAK_CHAIN_MISMATCH,
    )
    head = chain[-1]
    truncated = verify_entries(chain[:3], [Anchor(5, head.hash, ANCHOR_SOURCE)])
    assert (truncated.first_bad_sequence, truncated.break_kind) == (
        4,
        AuditBreak.AUDIT_BREAK_TRUNCATED,
    )
    assert verify_entries(chain[2:]).first_bad_sequence == 1
    partial = verify_entries(chain[2:], whole_log=False)
    assert partial.ok and partial.records_checked == 3
