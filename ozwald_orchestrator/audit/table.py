"""The audit log's SQLite table: schema, append, filtered reads and the walk verify needs.

The table lives in the orchestrator's database file beside the fleet store's tables,
reached through connections of its own. Triggers refuse UPDATE and DELETE so that no
code path, and no careless `sqlite3` session, changes a record by accident; they are a
guard, not the protection: whoever holds the file can drop them, and the hash chain is
what reveals a change then. Columns are plain values (integer microseconds, text), so
the statements carry over to PostgreSQL unchanged.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ozwald_sdk.audit_chain import GENESIS_HASH, ChainEntry

SCHEMA_VERSION = 1
MAX_PAGE = 10_000
DEFAULT_PAGE = 1_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_records (
    sequence BIGINT PRIMARY KEY,
    time_us BIGINT NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    deployment TEXT NOT NULL,
    host_id TEXT NOT NULL,
    instance TEXT NOT NULL,
    before_json TEXT NOT NULL,
    after_json TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_records_by_time ON audit_records (time_us);
CREATE INDEX IF NOT EXISTS audit_records_by_deployment ON audit_records (deployment, sequence);
CREATE INDEX IF NOT EXISTS audit_records_by_host ON audit_records (host_id, sequence);
CREATE TRIGGER IF NOT EXISTS audit_records_no_update BEFORE UPDATE ON audit_records
BEGIN
    SELECT RAISE(ABORT, 'audit_records is append-only: a record cannot be changed');
END;
CREATE TRIGGER IF NOT EXISTS audit_records_no_delete BEFORE DELETE ON audit_records
BEGIN
    SELECT RAISE(ABORT, 'audit_records is append-only: a record cannot be deleted');
END;
"""

_COLUMNS = (
    "sequence, time_us, actor, kind, deployment, host_id, instance, "
    "before_json, after_json, prev_hash, hash"
)


class AuditSchemaError(Exception):
    """The database's audit table was written by a newer orchestrator."""


@dataclass(frozen=True)
class AuditQuery:
    """Filters of ListAuditRecords; empty ones match all."""

    after_sequence: int = 0
    limit: int = DEFAULT_PAGE
    since_us: int | None = None
    until_us: int | None = None
    deployment: str = ""
    host_id: str = ""
    # An exact actor, or a prefix ending in ":" ("operator:").
    actor: str = ""
    kind: str = ""


def open_writer(path: Path) -> sqlite3.Connection:
    """The one connection that appends; creates the table and its guards."""
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        # An operator's action is on record once acknowledged, even after power loss.
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA busy_timeout=5000")
        # A record changed behind the log's back may hold bytes that are not UTF-8: the
        # orchestrator still starts and chains on from what is stored; verify names it.
        db.text_factory = _replacing
        db.executescript(_SCHEMA)
        row = db.execute("SELECT value FROM audit_meta WHERE key = 'schema'").fetchone()
        if row is None:
            db.execute(
                "INSERT INTO audit_meta (key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
            )
        elif int(row[0]) > SCHEMA_VERSION:
            raise AuditSchemaError(
                f"the audit log in {path} has schema {row[0]}, newer than this "
                f"orchestrator's {SCHEMA_VERSION}; run the newer orchestrator"
            )
    except BaseException:
        db.close()
        raise
    return db


def open_reader(path: Path) -> sqlite3.Connection:
    """A connection for one query or walk; it never writes."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    db.execute("PRAGMA busy_timeout=5000")
    return db


def head(db: sqlite3.Connection) -> tuple[int, str]:
    """The last record's sequence and hash; (0, GENESIS_HASH) for an empty log."""
    row = db.execute(
        "SELECT sequence, hash FROM audit_records WHERE typeof(sequence) = 'integer' "
        "ORDER BY sequence DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return 0, GENESIS_HASH
    return int(row[0]), str(row[1])


def hash_at(db: sqlite3.Connection, sequence: int) -> str | None:
    row = db.execute("SELECT hash FROM audit_records WHERE sequence = ?", (sequence,)).fetchone()
    return None if row is None else str(row[0])


def append(db: sqlite3.Connection, entries: Sequence[ChainEntry]) -> None:
    """Insert `entries` in one transaction; all or none."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.executemany(
            f"INSERT INTO audit_records ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    e.sequence,
                    e.time_us,
                    e.actor,
                    e.kind,
                    e.deployment,
                    e.host_id,
                    e.instance,
                    e.before_json,
                    e.after_json,
                    e.prev_hash,
                    e.hash,
                )
                for e in entries
            ),
        )
        db.execute("COMMIT")
    except BaseException:
        # A failed COMMIT (the disk filled) leaves the transaction open; the next
        # attempt must start clean.
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def select(db: sqlite3.Connection, query: AuditQuery) -> tuple[list[ChainEntry], bool]:
    """The records `query` selects, by sequence, and whether more follow the page."""
    clauses = ["sequence > ?"]
    values: list[object] = [query.after_sequence]
    if query.since_us is not None:
        clauses.append("time_us >= ?")
        values.append(query.since_us)
    if query.until_us is not None:
        clauses.append("time_us < ?")
        values.append(query.until_us)
    for column, wanted in (
        ("deployment", query.deployment),
        ("host_id", query.host_id),
        ("kind", query.kind),
    ):
        if wanted:
            clauses.append(f"{column} = ?")
            values.append(wanted)
    if query.actor.endswith(":"):
        clauses.append("substr(actor, 1, ?) = ?")
        values.extend((len(query.actor), query.actor))
    elif query.actor:
        clauses.append("actor = ?")
        values.append(query.actor)
    limit = max(1, min(query.limit or DEFAULT_PAGE, MAX_PAGE))
    values.append(limit + 1)
    # A listing shows bytes that are not UTF-8 as replacement characters.
    db.text_factory = _replacing
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM audit_records WHERE {' AND '.join(clauses)} "
        "ORDER BY sequence LIMIT ?",
        values,
    ).fetchall()
    entries = [_lenient(row) for row in rows[:limit]]
    return entries, len(rows) > limit


class UnreadableRow(Exception):
    """A stored row whose values are not of the types the log wrote."""

    def __init__(self, sequence: int | None, why: str) -> None:
        super().__init__(why)
        self.sequence = sequence
        self.why = why


def walk(db: sqlite3.Connection) -> Iterator[ChainEntry | UnreadableRow]:
    """Every stored row in sequence order, decoded strictly; a row that does not decode
    comes as an UnreadableRow in its place. Runs in one read transaction, so it sees one
    consistent state of the log however long it takes."""
    db.text_factory = bytes
    db.execute("BEGIN")
    try:
        for row in db.execute(f"SELECT {_COLUMNS} FROM audit_records ORDER BY sequence"):
            try:
                yield _strict(row)
            except UnreadableRow as e:
                yield e
    finally:
        db.execute("COMMIT")


_INTEGER_COLUMNS = ("sequence", "time_us")
_TEXT_COLUMNS = (
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


def _strict(row: tuple[object, ...]) -> ChainEntry:
    sequence = row[0] if type(row[0]) is int else None
    integers: list[int] = []
    for name, value in zip(_INTEGER_COLUMNS, row[:2], strict=True):
        if type(value) is not int:
            raise UnreadableRow(sequence, f"{name} is {type(value).__name__}, not an integer")
        integers.append(value)
    texts: list[str] = []
    for name, value in zip(_TEXT_COLUMNS, row[2:], strict=True):
        if not isinstance(value, bytes):
            raise UnreadableRow(sequence, f"{name} is {type(value).__name__}, not text")
        try:
            texts.append(value.decode("utf-8"))
        except UnicodeDecodeError:
            raise UnreadableRow(sequence, f"{name} is not valid UTF-8") from None
    return ChainEntry(integers[0], integers[1], *texts)


def _replacing(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _lenient(row: tuple[object, ...]) -> ChainEntry:
    """A row as well as it can be shown, whatever was done to it."""
    integers = [value if type(value) is int else _int_or_zero(value) for value in row[:2]]
    texts = [value if isinstance(value, str) else str(value) for value in row[2:]]
    return ChainEntry(integers[0], integers[1], *texts)


def _int_or_zero(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0
