"""The agent's embedded state: desired services, observed instances, the event log.

SQLite in WAL mode under the state directory. Desired state is written in one
transaction per apply, so an agent killed mid-apply restarts with either the old or
the new desired set, never half of each. Events are numbered by SQLite itself
(INTEGER PRIMARY KEY AUTOINCREMENT): sequences only grow and are never reused, which
is what lets a watcher resume from the last one it saw.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp
from ozwald.agent.v1 import service_scope_pb2, service_status_pb2
from ozwald.common.v1 import gpu_pb2, service_spec_pb2

SCHEMA_VERSION = 1
# Events kept for resuming watchers; older ones are pruned as new ones arrive.
EVENT_RETENTION = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS desired (
    realm TEXT NOT NULL,
    name TEXT NOT NULL,
    scope INTEGER NOT NULL,
    spec BLOB NOT NULL,
    fingerprint TEXT NOT NULL,
    gpu_vendor INTEGER NOT NULL,
    gpu_uuids TEXT NOT NULL,
    generation INTEGER NOT NULL,
    PRIMARY KEY (realm, name)
);
CREATE TABLE IF NOT EXISTS instances (
    realm TEXT NOT NULL,
    name TEXT NOT NULL,
    status BLOB NOT NULL,
    PRIMARY KEY (realm, name)
);
CREATE TABLE IF NOT EXISTS events (
    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ns INTEGER NOT NULL,
    status BLOB NOT NULL
);
"""


@dataclass(frozen=True)
class DesiredService:
    """One service the agent should run, as admitted."""

    spec: service_spec_pb2.ServiceSpec
    scope: service_scope_pb2.ServiceScope.ValueType
    fingerprint: str
    # The GPUs admission assigned: their vendor and UUIDs (empty for none).
    gpu_vendor: gpu_pb2.GpuVendor.ValueType
    gpu_uuids: tuple[str, ...]
    # Bumped by every apply that (re)admits the service, so the reconciler can tell
    # "re-applied after it failed" from "nothing changed".
    generation: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.spec.realm, self.spec.name)


class AgentStore:
    """Thread-safe access to the agent's SQLite database."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        # executescript commits on its own, so the schema goes first, outside a transaction.
        self._db.executescript(_SCHEMA)
        with self._transaction():
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                self._db.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [("schema_version", str(SCHEMA_VERSION)), ("agent_id", uuid.uuid4().hex)],
                )
            elif int(row[0]) != SCHEMA_VERSION:
                raise RuntimeError(
                    f"{path} has schema version {row[0]}; this agent knows {SCHEMA_VERSION}"
                )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def agent_id(self) -> str:
        """This agent's identity on the Docker Engine; stable across restarts."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key='agent_id'").fetchone()
        return str(row[0])

    def fleet_assignment(self) -> tuple[int, str]:
        """Version and digest of the last orchestrator assignment applied as the FLEET set
        ((0, "") for none).

        Kept across restarts so that a restarted agent tells its orchestrator what it
        already runs, and an assignment it has applied is not applied again."""
        with self._lock:
            rows = dict(
                self._db.execute(
                    "SELECT key, value FROM meta WHERE key IN"
                    " ('fleet_assignment_version', 'fleet_assignment_digest')"
                ).fetchall()
            )
        return int(rows.get("fleet_assignment_version", 0)), rows.get("fleet_assignment_digest", "")

    def set_fleet_assignment(self, version: int, digest: str) -> None:
        with self._lock, self._transaction():
            self._db.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [("fleet_assignment_version", str(version)), ("fleet_assignment_digest", digest)],
            )

    # Desired state ------------------------------------------------------------------

    def desired(self) -> list[DesiredService]:
        with self._lock:
            rows = self._db.execute(
                "SELECT spec, scope, fingerprint, gpu_vendor, gpu_uuids, generation FROM desired"
                " ORDER BY realm, name"
            ).fetchall()
        return [_desired_from_row(row) for row in rows]

    def replace_desired(
        self,
        scope: service_scope_pb2.ServiceScope.ValueType,
        services: Sequence[DesiredService],
    ) -> int:
        """Make `services` the whole desired set of `scope`, in one transaction; returns
        the generation stored with them."""
        with self._lock, self._transaction():
            generation = self._next_generation()
            self._db.execute("DELETE FROM desired WHERE scope = ?", (scope,))
            self._db.executemany(
                "INSERT INTO desired (realm, name, scope, spec, fingerprint, gpu_vendor,"
                " gpu_uuids, generation) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        s.spec.realm,
                        s.spec.name,
                        scope,
                        s.spec.SerializeToString(deterministic=True),
                        s.fingerprint,
                        s.gpu_vendor,
                        json.dumps(list(s.gpu_uuids)),
                        generation,
                    )
                    for s in services
                ],
            )
        return generation

    def desired_keys(self, scope: service_scope_pb2.ServiceScope.ValueType) -> set[tuple[str, str]]:
        """The (realm, name) of every desired service of `scope`."""
        with self._lock:
            rows = self._db.execute(
                "SELECT realm, name FROM desired WHERE scope = ?", (scope,)
            ).fetchall()
        return {(str(realm), str(name)) for realm, name in rows}

    def remove_desired(self, keys: Iterable[tuple[str, str]]) -> None:
        with self._lock, self._transaction():
            self._db.executemany("DELETE FROM desired WHERE realm = ? AND name = ?", list(keys))

    def _next_generation(self) -> int:
        row = self._db.execute("SELECT COALESCE(MAX(generation), 0) FROM desired").fetchone()
        return int(row[0]) + 1

    # Observed state and events ------------------------------------------------------

    def record_status(
        self, status: service_status_pb2.InstanceStatus
    ) -> service_status_pb2.ServiceEvent:
        """Store an instance's new status and append it to the event log, atomically."""
        now_ns = time.time_ns()
        blob = status.SerializeToString(deterministic=True)
        with self._lock, self._transaction():
            self._db.execute(
                "INSERT INTO instances (realm, name, status) VALUES (?, ?, ?)"
                " ON CONFLICT (realm, name) DO UPDATE SET status = excluded.status",
                (status.realm, status.name, blob),
            )
            cursor = self._db.execute(
                "INSERT INTO events (time_ns, status) VALUES (?, ?)", (now_ns, blob)
            )
            sequence = int(cursor.lastrowid or 0)
            self._db.execute(
                "DELETE FROM events WHERE sequence <= ?", (sequence - EVENT_RETENTION,)
            )
        return _event(sequence, now_ns, status)

    def forget_instance(self, realm: str, name: str) -> None:
        with self._lock, self._transaction():
            self._db.execute("DELETE FROM instances WHERE realm = ? AND name = ?", (realm, name))

    def instances(self) -> list[service_status_pb2.InstanceStatus]:
        return self.snapshot()[0]

    def snapshot(self) -> tuple[list[service_status_pb2.InstanceStatus], int]:
        """Every instance's status and the sequence of the last event they reflect, read
        together so that neither is newer than the other."""
        with self._lock:
            rows = self._db.execute("SELECT status FROM instances ORDER BY realm, name").fetchall()
            last = self._db.execute("SELECT COALESCE(MAX(sequence), 0) FROM events").fetchone()
        statuses = [service_status_pb2.InstanceStatus.FromString(row[0]) for row in rows]
        return statuses, int(last[0])

    def events_after(
        self, sequence: int, limit: int = 1000
    ) -> list[service_status_pb2.ServiceEvent]:
        with self._lock:
            rows = self._db.execute(
                "SELECT sequence, time_ns, status FROM events WHERE sequence > ?"
                " ORDER BY sequence LIMIT ?",
                (sequence, limit),
            ).fetchall()
        return [
            _event(seq, time_ns, service_status_pb2.InstanceStatus.FromString(blob))
            for seq, time_ns, blob in rows
        ]

    def last_sequence(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT COALESCE(MAX(sequence), 0) FROM events").fetchone()
        return int(row[0])

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK when the block raises."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")


def _desired_from_row(row: tuple[bytes, int, str, int, str, int]) -> DesiredService:
    spec_blob, scope, fingerprint, gpu_vendor, gpu_uuids, generation = row
    return DesiredService(
        spec=service_spec_pb2.ServiceSpec.FromString(spec_blob),
        scope=service_scope_pb2.ServiceScope.ValueType(scope),
        fingerprint=fingerprint,
        gpu_vendor=gpu_pb2.GpuVendor.ValueType(gpu_vendor),
        gpu_uuids=tuple(json.loads(gpu_uuids)),
        generation=generation,
    )


def _event(
    sequence: int, time_ns: int, status: service_status_pb2.InstanceStatus
) -> service_status_pb2.ServiceEvent:
    stamp = Timestamp()
    stamp.FromNanoseconds(time_ns)
    return service_status_pb2.ServiceEvent(sequence=sequence, time=stamp, status=status)
