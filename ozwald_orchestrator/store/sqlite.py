"""FleetStore on SQLite (WAL): the orchestrator's embedded store.

One connection writes; the orchestrator calls it from one thread at a time (its
writer), so SQLite's single-writer rule is never contended. WAL lets `read_events`
and the CLI's inspection run beside a write. Timestamps are integer microseconds
since the epoch and messages are serialized protobuf, so the same tables and
statements (ON CONFLICT upserts, no ROWID tricks) carry over to PostgreSQL with
BYTEA for BLOB.
"""

from __future__ import annotations

import datetime
import json
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from ozwald.agent.v1 import footprint_pb2
from ozwald.orchestrator.v1 import (
    agent_link_service_pb2,
    deployment_pb2,
    fleet_state_pb2,
    rollout_pb2,
)

from ozwald_orchestrator.store.protocol import (
    DeploymentRevision,
    DesiredVersion,
    FleetSnapshot,
    GpuHold,
    StoreBatch,
    StoredRollout,
)

SCHEMA_VERSION = 1
# Events kept for watchers that resume; older ones are pruned as new ones arrive.
EVENT_RETENTION = 100_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS desired_versions (
    version BIGINT PRIMARY KEY,
    applied_at_us BIGINT NOT NULL,
    summary TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deployment_history (
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    desired_version BIGINT NOT NULL,
    recorded_at_us BIGINT NOT NULL,
    deleted INTEGER NOT NULL,
    deployment BLOB NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS deployments (
    name TEXT PRIMARY KEY,
    realm TEXT NOT NULL,
    version BIGINT NOT NULL,
    deployment BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS instances (
    id TEXT PRIMARY KEY,
    deployment TEXT NOT NULL,
    host_id TEXT NOT NULL,
    gpu_indices TEXT NOT NULL DEFAULT '',
    instance BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS instances_by_deployment ON instances (deployment);
CREATE TABLE IF NOT EXISTS hosts (
    id TEXT PRIMARY KEY,
    last_seen_us BIGINT NOT NULL,
    host BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS host_labels (
    host_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (host_id, key)
);
CREATE TABLE IF NOT EXISTS assignments (
    host_id TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    assignment BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    sequence BIGINT PRIMARY KEY,
    time_us BIGINT NOT NULL,
    kind TEXT NOT NULL,
    event BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS footprints (
    fingerprint TEXT NOT NULL,
    host TEXT NOT NULL,
    measured_at_us BIGINT NOT NULL,
    footprint BLOB NOT NULL,
    PRIMARY KEY (fingerprint, host)
);
CREATE TABLE IF NOT EXISTS rollouts (
    deployment TEXT NOT NULL,
    id BIGINT NOT NULL,
    state INTEGER NOT NULL,
    rollout BLOB NOT NULL,
    stable BLOB,
    progress TEXT NOT NULL,
    PRIMARY KEY (deployment, id)
);
"""


class StoreVersionError(Exception):
    """The database was written by a newer orchestrator."""


class SqliteFleetStore:
    """FleetStore in one SQLite file. Thread-safe; writes are serialized."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # A committed apply survives power loss, not only a killed process.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        with self._lock:
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None:
                self._db.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
                )
            elif int(row[0]) > SCHEMA_VERSION:
                raise StoreVersionError(
                    f"{path} has schema {row[0]}, newer than this orchestrator's "
                    f"{SCHEMA_VERSION}; run the newer orchestrator"
                )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def load(self) -> FleetSnapshot:
        with self._lock:
            db = self._db
            desired = db.execute("SELECT COALESCE(MAX(version), 0) FROM desired_versions")
            desired_version = int(desired.fetchone()[0])
            deployments = [
                deployment_pb2.Deployment.FromString(blob)
                for (blob,) in db.execute("SELECT deployment FROM deployments ORDER BY name")
            ]
            instances: list[fleet_state_pb2.Instance] = []
            gpus: dict[str, GpuHold] = {}
            for instance_id, indices, blob in db.execute(
                "SELECT id, gpu_indices, instance FROM instances ORDER BY id"
            ):
                instances.append(fleet_state_pb2.Instance.FromString(blob))
                if indices:
                    gpus[instance_id] = _parse_hold(indices)
            hosts: list[fleet_state_pb2.Host] = []
            for last_seen_us, blob in db.execute(
                "SELECT last_seen_us, host FROM hosts ORDER BY id"
            ):
                host = fleet_state_pb2.Host.FromString(blob)
                # last_seen is written on its own, more often than the host.
                host.last_seen.FromDatetime(_from_us(last_seen_us))
                hosts.append(host)
            assignments = {
                host_id: agent_link_service_pb2.Assignment.FromString(blob)
                for host_id, blob in db.execute("SELECT host_id, assignment FROM assignments")
            }
            footprints = [
                footprint_pb2.Footprint.FromString(blob)
                for (blob,) in db.execute(
                    "SELECT footprint FROM footprints ORDER BY measured_at_us DESC"
                )
            ]
            last = db.execute("SELECT COALESCE(MAX(sequence), 0) FROM events").fetchone()[0]
            versions = {
                name: int(version)
                for name, version in db.execute(
                    "SELECT name, MAX(version) FROM deployment_history GROUP BY name"
                )
            }
            rollouts = [
                _rollout_from_row(blob, stable, progress)
                for blob, stable, progress in db.execute(
                    "SELECT r.rollout, r.stable, r.progress FROM rollouts r "
                    "JOIN (SELECT deployment, MAX(id) AS id FROM rollouts GROUP BY deployment) "
                    "latest ON latest.deployment = r.deployment AND latest.id = r.id "
                    "ORDER BY r.deployment"
                )
            ]
        return FleetSnapshot(
            desired_version=desired_version,
            deployments=deployments,
            instances=instances,
            instance_gpus=gpus,
            hosts=hosts,
            assignments=assignments,
            footprints=footprints,
            last_event_sequence=int(last),
            deployment_versions=versions,
            rollouts=rollouts,
        )

    def put_instances(self, instances: Sequence[fleet_state_pb2.Instance]) -> None:
        self.commit(StoreBatch(instances=list(instances)))

    def commit(self, batch: StoreBatch) -> None:
        if batch.empty():
            return
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                self._write(db, batch)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _write(self, db: sqlite3.Connection, batch: StoreBatch) -> None:
        desired = batch.desired_version
        if desired is not None:
            db.execute(
                "INSERT INTO desired_versions (version, applied_at_us, summary) VALUES (?, ?, ?)",
                (desired.version, _to_us(desired.applied_at), desired.summary),
            )
        recorded_at = _to_us(desired.applied_at) if desired is not None else 0
        desired_number = desired.version if desired is not None else 0
        for deployment in batch.deployments:
            blob = deployment.SerializeToString()
            db.execute(
                "INSERT INTO deployments (name, realm, version, deployment) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET realm = excluded.realm, "
                "version = excluded.version, deployment = excluded.deployment",
                (deployment.name, deployment.realm, deployment.version, blob),
            )
            db.execute(
                "INSERT INTO deployment_history (name, version, desired_version, "
                "recorded_at_us, deleted, deployment) VALUES (?, ?, ?, ?, 0, ?)",
                (deployment.name, deployment.version, desired_number, recorded_at, blob),
            )
        for removed in batch.removed_deployments:
            row = db.execute(
                "SELECT deployment FROM deployments WHERE name = ?", (removed.name,)
            ).fetchone()
            db.execute("DELETE FROM deployments WHERE name = ?", (removed.name,))
            if row is not None:
                last = deployment_pb2.Deployment.FromString(row[0])
                last.version = removed.version
                db.execute(
                    "INSERT INTO deployment_history (name, version, desired_version, "
                    "recorded_at_us, deleted, deployment) VALUES (?, ?, ?, ?, 1, ?)",
                    (
                        removed.name,
                        removed.version,
                        desired_number,
                        recorded_at,
                        last.SerializeToString(),
                    ),
                )
        db.executemany(
            "INSERT INTO instances (id, deployment, host_id, instance) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET deployment = excluded.deployment, "
            "host_id = excluded.host_id, instance = excluded.instance",
            ((i.id, i.deployment, i.host_id, i.SerializeToString()) for i in batch.instances),
        )
        db.executemany(
            "UPDATE instances SET gpu_indices = ? WHERE id = ?",
            (
                (_format_hold(hold), instance_id)
                for instance_id, hold in batch.instance_gpus.items()
            ),
        )
        db.executemany(
            "DELETE FROM instances WHERE id = ?", ((i,) for i in batch.deleted_instances)
        )
        for host in batch.hosts:
            db.execute(
                "INSERT INTO hosts (id, last_seen_us, host) VALUES (?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET host = excluded.host, "
                "last_seen_us = MAX(hosts.last_seen_us, excluded.last_seen_us)",
                (
                    host.id,
                    _to_us(host.last_seen.ToDatetime(datetime.UTC)),
                    host.SerializeToString(),
                ),
            )
            db.execute("DELETE FROM host_labels WHERE host_id = ?", (host.id,))
            db.executemany(
                "INSERT INTO host_labels (host_id, key, value) VALUES (?, ?, ?)",
                ((host.id, k, v) for k, v in sorted(host.labels.items())),
            )
        db.executemany(
            "UPDATE hosts SET last_seen_us = ? WHERE id = ? AND last_seen_us < ?",
            ((_to_us(t), host_id, _to_us(t)) for host_id, t in batch.last_seen.items()),
        )
        db.executemany(
            "INSERT INTO assignments (host_id, version, assignment) VALUES (?, ?, ?) "
            "ON CONFLICT (host_id) DO UPDATE SET version = excluded.version, "
            "assignment = excluded.assignment",
            (
                (host_id, a.version, a.SerializeToString())
                for host_id, a in batch.assignments.items()
            ),
        )
        db.executemany(
            "INSERT INTO events (sequence, time_us, kind, event) VALUES (?, ?, ?, ?)",
            (
                (e.sequence, _to_us(e.time.ToDatetime(datetime.UTC)), e.kind, e.SerializeToString())
                for e in batch.events
            ),
        )
        if batch.events:
            newest = batch.events[-1].sequence
            # Pruning in steps keeps the DELETE rare and cheap.
            if newest % 1000 < len(batch.events):
                db.execute("DELETE FROM events WHERE sequence <= ?", (newest - EVENT_RETENTION,))
        db.executemany(
            "INSERT INTO footprints (fingerprint, host, measured_at_us, footprint) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (fingerprint, host) DO UPDATE SET "
            "measured_at_us = excluded.measured_at_us, footprint = excluded.footprint",
            (
                (
                    f.fingerprint,
                    f.host.hostname,
                    _to_us(f.measured_at.ToDatetime(datetime.UTC)),
                    f.SerializeToString(),
                )
                for f in batch.footprints
            ),
        )
        db.executemany(
            "INSERT INTO rollouts (deployment, id, state, rollout, stable, progress) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (deployment, id) DO UPDATE SET "
            "state = excluded.state, rollout = excluded.rollout, stable = excluded.stable, "
            "progress = excluded.progress",
            (
                (
                    r.rollout.deployment,
                    r.rollout.id,
                    r.rollout.state,
                    r.rollout.SerializeToString(),
                    r.stable.SerializeToString() if r.stable is not None else None,
                    _progress_json(r),
                )
                for r in batch.rollouts
            ),
        )

    def read_events(self, after_sequence: int, limit: int) -> list[fleet_state_pb2.FleetEvent]:
        with self._lock:
            rows = self._db.execute(
                "SELECT event FROM events WHERE sequence > ? ORDER BY sequence LIMIT ?",
                (after_sequence, limit),
            ).fetchall()
        return [fleet_state_pb2.FleetEvent.FromString(blob) for (blob,) in rows]

    def desired_versions(self) -> list[DesiredVersion]:
        with self._lock:
            rows = self._db.execute(
                "SELECT version, applied_at_us, summary FROM desired_versions ORDER BY version"
            ).fetchall()
        return [DesiredVersion(int(v), _from_us(t), s) for v, t, s in rows]

    def deployment_history(self, name: str) -> list[DeploymentRevision]:
        with self._lock:
            rows = self._db.execute(
                "SELECT deployment, desired_version, recorded_at_us, deleted "
                "FROM deployment_history WHERE name = ? ORDER BY version",
                (name,),
            ).fetchall()
        return [
            DeploymentRevision(
                deployment=deployment_pb2.Deployment.FromString(blob),
                desired_version=int(desired),
                recorded_at=_from_us(at),
                deleted=bool(deleted),
            )
            for blob, desired, at, deleted in rows
        ]


def _progress_json(stored: StoredRollout) -> str:
    """The bookkeeping as JSON text: times in microseconds, as in every other column."""
    return json.dumps(
        {
            "replaced_at_us": {i: _to_us(t) for i, t in sorted(stored.replaced_at.items())},
            "healthy": sorted(stored.healthy),
            "failed": sorted(stored.failed),
        }
    )


def _rollout_from_row(blob: bytes, stable: bytes | None, progress: str) -> StoredRollout:
    parsed = json.loads(progress)
    return StoredRollout(
        rollout=rollout_pb2.Rollout.FromString(blob),
        stable=deployment_pb2.Deployment.FromString(stable) if stable is not None else None,
        replaced_at={i: _from_us(int(t)) for i, t in parsed["replaced_at_us"].items()},
        healthy=frozenset(parsed["healthy"]),
        failed=frozenset(parsed["failed"]),
    )


def _to_us(moment: datetime.datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def _from_us(micros: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(micros / 1_000_000, datetime.UTC)


def _format_hold(hold: GpuHold) -> str:
    """ "VENDOR:I,J" (empty for none): one column, the same in SQLite and PostgreSQL."""
    if not hold.indices:
        return ""
    return f"{hold.vendor}:{','.join(str(i) for i in hold.indices)}"


def _parse_hold(text: str) -> GpuHold:
    vendor, _, indices = text.partition(":")
    return GpuHold(int(vendor), tuple(int(i) for i in indices.split(",") if i))
