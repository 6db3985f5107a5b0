"""The webhook delivery log: one row per attempt, in the agent's SQLite, bounded.

The table lives in `STATE_DIR/agent.db` beside the desired state, on a connection of its
own (WAL lets both read and write). It is a log for people (`ozwald webhooks
deliveries`), not a queue: pending retries live in memory and an agent restart drops
them, but every attempt made is here.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from ozwald.agent.v1 import webhook_delivery_pb2

RETENTION = 10_000
DEFAULT_LIMIT = 50

_SCHEMA = """
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    realm TEXT NOT NULL,
    service TEXT NOT NULL,
    delivery BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_service
    ON webhook_deliveries (realm, service, id);
"""


class WebhookDeliveryStore:
    """Thread-safe, append-only (and pruned) storage of delivery attempts."""

    def __init__(self, path: Path, retention: int = RETENTION) -> None:
        self._lock = threading.Lock()
        self._retention = retention
        self._closed = False
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._db.close()

    def record(self, delivery: webhook_delivery_pb2.WebhookDelivery) -> None:
        with self._lock:
            if self._closed:  # an attempt that finished while the agent stopped
                return
            cursor = self._db.execute(
                "INSERT INTO webhook_deliveries (realm, service, delivery) VALUES (?, ?, ?)",
                (delivery.realm, delivery.service, delivery.SerializeToString()),
            )
            newest = cursor.lastrowid or 0
            if newest > self._retention:
                self._db.execute(
                    "DELETE FROM webhook_deliveries WHERE id <= ?", (newest - self._retention,)
                )

    def list(
        self, *, realm: str = "", service: str = "", limit: int = DEFAULT_LIMIT
    ) -> list[webhook_delivery_pb2.WebhookDelivery]:
        """Newest first; `realm` / `service` empty mean all."""
        query = "SELECT delivery FROM webhook_deliveries WHERE 1=1"
        args: list[str | int] = []
        if realm:
            query += " AND realm = ?"
            args.append(realm)
        if service:
            query += " AND service = ?"
            args.append(service)
        query += " ORDER BY id DESC LIMIT ?"
        args.append(limit if limit > 0 else DEFAULT_LIMIT)
        with self._lock:
            rows = self._db.execute(query, args).fetchall()
        return [webhook_delivery_pb2.WebhookDelivery.FromString(row[0]) for row in rows]


def timestamp_of(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(round(seconds * 1e9))
    return stamp


def duration_of(seconds: float) -> Duration:
    duration = Duration()
    duration.FromNanoseconds(round(seconds * 1e9))
    return duration
