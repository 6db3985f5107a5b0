"""The audit log on SQLite: records are chained, committed, queryable, guarded by triggers,
and any change made behind its back (fields, deletions, reordering, a cut-off tail, a
swapped database) is named by `verify` at the first record it touches."""

from __future__ import annotations

import asyncio
import datetime
import itertools
import json
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ozwald.orchestrator.v1.audit_service_pb2 import AuditBreak
from ozwald.orchestrator.v1.deployment_pb2 import Deployment

from ozwald_orchestrator.audit import AuditLog, AuditQuery
from ozwald_orchestrator.audit.checkpoint import read_checkpoint
from ozwald_orchestrator.audit.log import AuditLogClosedError, AuditWriteError
from ozwald_orchestrator.store.sqlite import SqliteFleetStore
from ozwald_sdk.audit_chain import GENESIS_HASH, ChainEntry, digest_of, entry_from_record

EPOCH = datetime.datetime(2026, 11, 27, 10, 0, 0, tzinfo=datetime.UTC)


class FakeNow:
    """Each call a millisecond (and a microsecond, to exercise precision) later."""

    def __init__(self) -> None:
        self._ticks = itertools.count()

    def __call__(self) -> datetime.datetime:
        return EPOCH + datetime.timedelta(milliseconds=next(self._ticks), microseconds=7)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "orchestrator.db"


@pytest.fixture
def log(db_path: Path) -> Iterator[AuditLog]:
    opened = AuditLog(db_path, now=FakeNow())
    yield opened
    opened.close()


def _fill(log: AuditLog, count: int) -> None:
    for n in range(1, count + 1):
        log.record(
            "orchestrator",
            "instance-state-changed",
            deployment="embed",
            instance=f"embed-{n % 3}",
            host_id=f"h{n % 2}",
            before={"state": "STARTING", "n": n},
            after={"state": "RUNNING", "n": n},
        )
    assert log.flush(timeout=10)


def _raw(db_path: Path) -> sqlite3.Connection:
    """A plain sqlite3 session, as someone with the file would open it."""
    return sqlite3.connect(db_path, isolation_level=None)


def _drop_guards(db: sqlite3.Connection) -> None:
    db.execute("DROP TRIGGER audit_records_no_update")
    db.execute("DROP TRIGGER audit_records_no_delete")


def test_records_chain_from_genesis_and_verify(log: AuditLog) -> None:
    first = log.record(
        "operator:alice",
        "deployment-created",
        deployment="embed",
        after={"replicas": 2, "name": "embed"},
    )
    second = log.record(
        "operator:alice",
        "deployment-updated",
        deployment="embed",
        before={"replicas": 2, "name": "embed"},
        after={"replicas": 3, "name": "embed"},
    )
    assert (first, second) == (1, 2)
    assert log.flush(timeout=10)

    records, more = log.query(AuditQuery())
    assert not more
    assert [r.sequence for r in records] == [1, 2]
    assert records[0].prev_hash == GENESIS_HASH
    assert records[1].prev_hash == records[0].hash
    # Canonical JSON: sorted keys, no whitespace, exactly what the hash covers.
    assert records[0].before_json == ""
    assert records[0].after_json == '{"name":"embed","replicas":2}'
    assert records[1].time.ToDatetime(tzinfo=datetime.UTC) == EPOCH + datetime.timedelta(
        milliseconds=1, microseconds=7
    )
    for record in records:
        assert digest_of(entry_from_record(record)) == record.hash

    result = log.verify()
    assert result.ok
    assert result.records_checked == 2
    assert (result.head_sequence, result.head_hash) == (2, records[1].hash)


def test_protobuf_states_are_recorded_as_their_json_mapping(log: AuditLog) -> None:
    log.record(
        "local:uid=0",
        "deployment-created",
        deployment="embed",
        after=Deployment(name="embed", realm="default", replicas=2),
    )
    assert log.flush(timeout=10)
    [record] = log.query(AuditQuery())[0]
    assert json.loads(record.after_json) == {"name": "embed", "realm": "default", "replicas": 2}


def test_record_refuses_what_it_cannot_chain(log: AuditLog) -> None:
    with pytest.raises(ValueError, match="actor"):
        log.record("", "deployment-created")
    with pytest.raises(ValueError, match="kebab-case"):
        log.record("orchestrator", "Deployment Created")
    with pytest.raises(ValueError, match="JSON"):
        log.record("orchestrator", "host-joined", after={"bad": float("nan")})
    assert log.head_sequence == 0


def test_the_chain_continues_across_a_restart(db_path: Path) -> None:
    log = AuditLog(db_path, now=FakeNow())
    _fill(log, 3)
    log.close()
    with pytest.raises(AuditLogClosedError):
        log.record("orchestrator", "host-joined")

    reopened = AuditLog(db_path, now=FakeNow())
    try:
        assert reopened.record("orchestrator", "host-joined", host_id="h9") == 4
        assert reopened.flush(timeout=10)
        records, _ = reopened.query(AuditQuery(after_sequence=3))
        assert records[0].prev_hash == reopened.query(AuditQuery(after_sequence=2))[0][0].hash
        assert reopened.verify().ok
    finally:
        reopened.close()


def test_the_table_shares_the_fleet_stores_file(db_path: Path) -> None:
    store = SqliteFleetStore(db_path)
    log = AuditLog(db_path, now=FakeNow())
    try:
        _fill(log, 5)
        assert store.load().deployments == []
        assert log.verify().ok
    finally:
        log.close()
        store.close()


def test_triggers_refuse_update_and_delete(log: AuditLog, db_path: Path) -> None:
    _fill(log, 2)
    db = _raw(db_path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE audit_records SET actor = 'operator:mallory' WHERE sequence = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM audit_records WHERE sequence = 2")
    db.close()
    assert log.verify().ok


def test_a_changed_field_is_named(log: AuditLog, db_path: Path) -> None:
    _fill(log, 10)
    db = _raw(db_path)
    _drop_guards(db)
    db.execute("UPDATE audit_records SET actor = 'operator:mallory' WHERE sequence = 6")
    db.close()

    result = log.verify()
    assert not result.ok
    assert result.first_bad_sequence == 6
    assert result.break_kind == AuditBreak.AUDIT_BREAK_HASH_MISMATCH
    assert "record 6" in result.problem and "changed" in result.problem
    assert result.records_checked == 5


def test_a_changed_field_with_a_recomputed_hash_breaks_the_next_link(
    log: AuditLog, db_path: Path
) -> None:
    _fill(log, 10)
    db = _raw(db_path)
    _drop_guards(db)
    row = db.execute("SELECT * FROM audit_records WHERE sequence = 4").fetchone()
    columns = [d[0] for d in db.execute("SELECT * FROM audit_records LIMIT 0").description]
    fields = dict(zip(columns, row, strict=True))
    fields["after_json"] = '{"state":"FAILED"}'
    # Whoever forges a record can recompute its own hash; the next record still
    # points at the old one.
    forged = digest_of(ChainEntry(**fields))
    db.execute(
        "UPDATE audit_records SET after_json = ?, hash = ? WHERE sequence = 4",
        (fields["after_json"], forged),
    )
    db.close()

    result = log.verify()
    assert (result.ok, result.first_bad_sequence) == (False, 5)
    assert result.break_kind == AuditBreak.AUDIT_BREAK_CHAIN_MISMATCH


def test_a_deleted_middle_record_is_named(log: AuditLog, db_path: Path) -> None:
    _fill(log, 10)
    db = _raw(db_path)
    _drop_guards(db)
    db.execute("DELETE FROM audit_records WHERE sequence = 7")
    db.close()

    result = log.verify()
    assert (result.ok, result.first_bad_sequence) == (False, 7)
    assert result.break_kind == AuditBreak.AUDIT_BREAK_MISSING_RECORD
    assert "record 7 is missing" in result.problem


def test_a_deleted_first_record_is_named(log: AuditLog, db_path: Path) -> None:
    _fill(log, 3)
    db = _raw(db_path)
    _drop_guards(db)
    db.execute("DELETE FROM audit_records WHERE sequence = 1")
    db.close()
    result = log.verify()
    assert (result.ok, result.first_bad_sequence) == (False, 1)
    assert result.break_kind == AuditBreak.AUDIT_BREAK_MISSING_RECORD


def test_renumbered_records_after_a_deletion_are_named(log: AuditLog, db_path: Path) -> None:
    """Hiding a deletion by closing the gap changes the sequences the hashes cover."""
    _fill(log, 6)
    db = _raw(db_path)
    _drop_guards(db)
    db.execute("DELETE FROM audit_records WHERE sequence = 3")
    db.execute("UPDATE audit_records SET sequence = sequence - 1 WHERE sequence > 3")
    db.close()
    result = log.verify()
    assert (result.ok, result.first_bad_sequence) == (False, 3)


def test_swapped_records_are_named(log: AuditLog, db_path: Path) -> None:
    _fill(log, 8)
    db = _raw(db_path)
    _drop_guards(db)
    # Exchange the contents of records 4 and 5, keeping each sequence number in place.
    db.execute("UPDATE audit_records SET sequence = -4 WHERE sequence = 4")
    db.execute("UPDATE audit_records SET sequence = 4 WHERE sequence = 5")
    db.execute("UPDATE audit_records SET sequence = 5 WHERE sequence = -4")
    db.close()
    result = log.verify()
    assert (result.ok, result.first_bad_sequence) == (False, 4)
    assert result.break_kind == AuditBreak.AUDIT_BREAK_CHAIN_MISMATCH


def test_a_value_of_the_wrong_type_is_unreadable(log: AuditLog, db_path: Path) -> None:
    _fill(log, 4)
    db = _raw(db_path)
    _drop_guards(db)
    db.execute("UPDATE audit_records SET time_us = 'yesterday' WHERE sequence = 3")
    db.close()
    result = log.verify()
    assert (result.ok, result.first_bad_sequence) == (False, 3)
    assert result.break_kind == AuditBreak.AUDIT_BREAK_UNREADABLE


def test_a_cut_off_tail_passes_the_chain_but_not_the_checkpoint(
    db_path: Path, tmp_path: Path
) -> None:
    log = AuditLog(db_path, now=FakeNow())
    _fill(log, 10)
    log.close()  # writes the checkpoint at record 10
    checkpoint = read_checkpoint(db_path.with_name("orchestrator.db.audit-head"))
    assert checkpoint is not None and checkpoint.sequence == 10

    db = _raw(db_path)
    _drop_guards(db)
    db.execute("DELETE FROM audit_records WHERE sequence > 8")
    db.close()

    # The chain alone is intact: truncation is invisible to it.
    (tmp_path / "elsewhere").mkdir()
    no_checkpoint = AuditLog(
        db_path, checkpoint_path=tmp_path / "elsewhere" / "head", now=FakeNow()
    )
    try:
        assert no_checkpoint.verify().ok
    finally:
        no_checkpoint.close()

    reopened = AuditLog(db_path, now=FakeNow())
    try:
        result = reopened.verify()
        assert (result.ok, result.first_bad_sequence) == (False, 9)
        assert result.break_kind == AuditBreak.AUDIT_BREAK_TRUNCATED
        assert result.checkpoint_sequence == 10
        assert "cut off the end" in result.problem
        # New records refill the numbers; the checkpoint, kept as evidence, still differs.
        _fill(reopened, 3)
        reopened.close()
        again = AuditLog(db_path, now=FakeNow())
        result = again.verify()
        again.close()
        assert (result.ok, result.first_bad_sequence) == (False, 10)
        assert result.break_kind == AuditBreak.AUDIT_BREAK_ANCHOR_MISMATCH
    finally:
        reopened.close()


def test_an_older_copy_of_the_database_fails_against_the_checkpoint(
    db_path: Path, tmp_path: Path
) -> None:
    log = AuditLog(db_path, now=FakeNow())
    _fill(log, 4)
    log.close()
    backup = tmp_path / "backup.db"
    shutil.copy(db_path, backup)
    log = AuditLog(db_path, now=FakeNow())
    _fill(log, 4)
    log.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    shutil.copy(backup, db_path)

    restored = AuditLog(db_path, now=FakeNow())
    try:
        result = restored.verify()
    finally:
        restored.close()
    assert (result.ok, result.break_kind) == (False, AuditBreak.AUDIT_BREAK_TRUNCATED)
    assert result.first_bad_sequence == 5


def test_an_anchor_kept_elsewhere_catches_a_rewritten_log(db_path: Path, tmp_path: Path) -> None:
    log = AuditLog(db_path, now=FakeNow())
    _fill(log, 5)
    head = log.verify()
    log.close()
    # Someone replaces the whole log (and its checkpoint) with a fresh, valid one.
    for path in tmp_path.glob("orchestrator.db*"):
        path.unlink()
    forged = AuditLog(db_path, now=FakeNow())
    try:
        forged.record("operator:mallory", "deployment-created", deployment="x")
        for _ in range(5):
            forged.record("orchestrator", "host-joined", host_id="h1")
        assert forged.flush(timeout=10)
        assert forged.verify().ok
        result = forged.verify(head.head_sequence, head.head_hash)
        assert (result.ok, result.first_bad_sequence) == (False, 5)
        assert result.break_kind == AuditBreak.AUDIT_BREAK_ANCHOR_MISMATCH
        assert forged.verify(9, head.head_hash).break_kind == AuditBreak.AUDIT_BREAK_TRUNCATED
    finally:
        forged.close()


def test_a_damaged_checkpoint_is_reported(log: AuditLog, db_path: Path) -> None:
    _fill(log, 2)
    path = db_path.with_name("orchestrator.db.audit-head")
    # Damaged only once the writer has checkpointed the head: otherwise its next
    # checkpoint (due a second after the first) would repair the file under the test.
    deadline = time.monotonic() + 10
    while (checkpoint := read_checkpoint(path)) is None or checkpoint.sequence < 2:
        assert time.monotonic() < deadline, "the head was never checkpointed"
        time.sleep(0.02)
    path.write_text("{not json")
    result = log.verify()
    assert not result.ok
    assert "checkpoint is damaged" in result.problem


def test_query_filters_and_pages(log: AuditLog) -> None:
    log.record("operator:alice", "deployment-created", deployment="embed")
    log.record("operator:bob", "deployment-created", deployment="chat")
    log.record("orchestrator", "instance-placed", deployment="embed", host_id="h1")
    log.record("agent:h1", "instance-state-changed", deployment="embed", host_id="h1")
    log.record("local:uid=0", "deployment-deleted", deployment="chat")
    assert log.flush(timeout=10)

    def sequences(**filters: object) -> list[int]:
        return [r.sequence for r in log.query(AuditQuery(**filters))[0]]  # type: ignore[arg-type]

    assert sequences(deployment="embed") == [1, 3, 4]
    assert sequences(host_id="h1") == [3, 4]
    assert sequences(actor="operator:") == [1, 2]
    assert sequences(actor="operator:bob") == [2]
    assert sequences(actor="operator") == []
    assert sequences(kind="deployment-created") == [1, 2]
    assert sequences(deployment="embed", actor="agent:h1") == [4]
    since = (EPOCH + datetime.timedelta(milliseconds=2)).timestamp()
    assert sequences(since_us=int(since * 1_000_000)) == [3, 4, 5]
    assert sequences(until_us=int(since * 1_000_000)) == [1, 2]
    page, more = log.query(AuditQuery(limit=2))
    assert [r.sequence for r in page] == [1, 2] and more
    page, more = log.query(AuditQuery(limit=2, after_sequence=4))
    assert [r.sequence for r in page] == [5] and not more


def test_concurrent_recorders_form_one_chain(log: AuditLog) -> None:
    def work(worker: int) -> None:
        for n in range(200):
            log.record(f"agent:h{worker}", "instance-state-changed", after={"n": n})

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert log.flush(timeout=10)
    result = log.verify()
    assert result.ok and result.records_checked == 800
    # Group commit: far fewer transactions than records.
    assert log.commits < 800


@pytest.mark.asyncio
async def test_flushed_returns_once_records_are_committed(db_path: Path) -> None:
    log = AuditLog(db_path, now=FakeNow())
    try:
        sequence = log.record("operator:alice", "deployment-deleted", deployment="embed")
        await asyncio.wait_for(log.flushed(), timeout=10)
        assert log.durable_sequence >= sequence
        # Another connection sees it at once: it is committed, not just queued.
        reader = _raw(db_path)
        assert reader.execute("SELECT COUNT(*) FROM audit_records").fetchone()[0] == 1
        reader.close()
        await asyncio.wait_for(log.flushed(), timeout=1)  # nothing pending: immediate
    finally:
        log.close()


def test_writes_wait_out_a_locked_database(log: AuditLog, db_path: Path) -> None:
    """Another connection holding the write lock (the fleet store mid-commit) delays the
    audit writer; nothing is lost or reordered."""
    blocker = _raw(db_path)
    blocker.execute("BEGIN IMMEDIATE")
    log.record("orchestrator", "host-joined", host_id="h1")
    assert not log.flush(timeout=0.3)
    blocker.execute("COMMIT")
    blocker.close()
    assert log.flush(timeout=10)
    assert log.verify().ok


def test_a_log_whose_newest_record_was_damaged_still_opens(db_path: Path) -> None:
    """The orchestrator must start (its fleet matters more); verify names the damage,
    and records appended after it do not hide it."""
    log = AuditLog(db_path, now=FakeNow())
    _fill(log, 3)
    log.close()
    db = _raw(db_path)
    _drop_guards(db)
    db.execute(
        "UPDATE audit_records SET hash = CAST(? AS TEXT) WHERE sequence = 3",
        (b"\xff" + b"0" * 63,),
    )
    db.close()

    reopened = AuditLog(db_path, now=FakeNow())
    try:
        assert reopened.record("orchestrator", "host-joined") == 4
        assert reopened.flush(timeout=10)
        result = reopened.verify()
    finally:
        reopened.close()
    assert (result.ok, result.first_bad_sequence) == (False, 3)
    assert result.break_kind == AuditBreak.AUDIT_BREAK_UNREADABLE


def _squat(db_path: Path, sequence: int) -> sqlite3.Connection:
    """Take the next sequence number from another connection, as a second writer would."""
    db = _raw(db_path)
    db.execute(
        "INSERT INTO audit_records VALUES (?, 0, 'x', 'x', '', '', '', '', '', '', '')",
        (sequence,),
    )
    return db


def test_failed_writes_keep_records_queued_in_order(log: AuditLog, db_path: Path) -> None:
    _fill(log, 2)
    squatter = _squat(db_path, 3)
    log.record("operator:alice", "deployment-created", deployment="a")
    log.record("operator:alice", "deployment-created", deployment="b")
    assert not log.flush(timeout=0.3)
    assert log.durable_sequence == 2
    _drop_guards(squatter)
    squatter.execute("DELETE FROM audit_records WHERE sequence = 3")
    squatter.close()
    assert log.flush(timeout=10)
    result = log.verify()
    assert result.ok and result.records_checked == 4


@pytest.mark.asyncio
async def test_closing_while_writes_fail_gives_up_and_says_so(db_path: Path) -> None:
    log = AuditLog(db_path, now=FakeNow())
    _squat(db_path, 1).close()
    log.record("operator:alice", "deployment-created", deployment="a")
    waiting = asyncio.ensure_future(log.flushed())
    await asyncio.to_thread(log.close)
    with pytest.raises(AuditWriteError, match="1 audit records could not be written"):
        await asyncio.wait_for(waiting, timeout=10)
    assert not log.flush(timeout=0)
