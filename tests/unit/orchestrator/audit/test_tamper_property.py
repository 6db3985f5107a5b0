"""Property: any single-byte change to any stored audit record (a byte replaced, inserted
or removed in a text field, a byte of an integer field replaced) fails verification, at
that record."""

from __future__ import annotations

import datetime
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ozwald_orchestrator.audit import AuditLog

RECORDS = 6
TEXT_COLUMNS = (
    "actor",
    "kind",
    "deployment",
    "host_id",
    "instance",
    "before_json",
    "after_json",
    "prev_hash",
    "hash",
)
INTEGER_COLUMNS = ("sequence", "time_us")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A log of RECORDS records with every field non-empty, non-ASCII text included."""
    directory = tmp_path_factory.mktemp("audit-template")
    moments = iter(
        datetime.datetime(2026, 11, 27, 10, 0, n, 123456, tzinfo=datetime.UTC)
        for n in range(RECORDS)
    )
    log = AuditLog(directory / "orchestrator.db", now=lambda: next(moments))
    for n in range(1, RECORDS + 1):
        log.record(
            f"operator:zoë-{n}",
            "deployment-updated",
            deployment=f"embed{n}",
            host_id=f"h{n}",
            instance=f"embed{n}-0",
            before={"replicas": n, "note": "naïve ☃"},
            after={"replicas": n + 1, "note": "naïve ☃"},
        )
    log.close()
    db = sqlite3.connect(directory / "orchestrator.db", isolation_level=None)
    db.execute("DROP TRIGGER audit_records_no_update")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return directory


@st.composite
def text_change(draw: st.DrawFn, original: bytes) -> bytes:
    how = draw(st.sampled_from(("replace", "insert", "remove")))
    if how == "insert":
        at = draw(st.integers(0, len(original)))
        return original[:at] + bytes([draw(st.integers(0, 255))]) + original[at:]
    at = draw(st.integers(0, len(original) - 1))
    if how == "remove":
        return original[:at] + original[at + 1 :]
    new = draw(st.integers(0, 255).filter(lambda b: b != original[at]))
    return original[:at] + bytes([new]) + original[at + 1 :]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_any_single_byte_change_is_detected(template: Path, data: st.DataObject) -> None:
    sequence = data.draw(st.integers(1, RECORDS), label="record")
    column = data.draw(st.sampled_from(TEXT_COLUMNS + INTEGER_COLUMNS), label="column")
    directory = Path(tempfile.mkdtemp(prefix="audit-tamper-"))
    try:
        for path in template.iterdir():
            shutil.copy(path, directory / path.name)
        db = sqlite3.connect(directory / "orchestrator.db", isolation_level=None)
        db.text_factory = bytes
        (original,) = db.execute(
            f"SELECT {column} FROM audit_records WHERE sequence = ?", (sequence,)
        ).fetchone()
        if column in INTEGER_COLUMNS:
            raw = bytearray(int(original).to_bytes(8, "big", signed=True))
            at = data.draw(st.integers(0, 7), label="byte")
            raw[at] = data.draw(st.integers(0, 255).filter(lambda b: b != raw[at]), label="to")
            changed: object = int.from_bytes(raw, "big", signed=True)
            statement = f"UPDATE audit_records SET {column} = ? WHERE sequence = ?"
        else:
            changed = data.draw(text_change(original), label="to")
            statement = f"UPDATE audit_records SET {column} = CAST(? AS TEXT) WHERE sequence = ?"
        try:
            db.execute(statement, (changed, sequence))
        except sqlite3.IntegrityError:
            # The new sequence number is another record's: not a single change.
            assume(False)
        db.close()

        log = AuditLog(directory / "orchestrator.db")
        try:
            result = log.verify()
        finally:
            log.close()
        assert not result.ok, f"{column} of record {sequence} changed unnoticed"
        if column == "sequence":
            # Renumbered: the gap it leaves (or the record that jumped ahead) is first.
            assert 1 <= result.first_bad_sequence <= sequence
        else:
            assert result.first_bad_sequence == sequence, result.problem
    finally:
        shutil.rmtree(directory, ignore_errors=True)
