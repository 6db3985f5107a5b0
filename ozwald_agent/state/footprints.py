"""Recorded footprints: one per realm, service, variety and profile, in the agent's SQLite.

The table lives in the agent's database (`STATE_DIR/agent.db`) beside the desired state,
on a connection of its own (WAL lets both read and write). A new measurement of the same
combination replaces the old one: admission wants the latest figure, and the footprint
keeps the effective spec's fingerprint and the host it was measured on, so a reader can
tell whether it still applies.

The store is also admission's `FootprintBook`: a footprint measured for another
fingerprint than the spec being admitted comes back marked stale, and admission counts
the declared figures for it instead.
"""

from __future__ import annotations

import builtins
import sqlite3
import threading
from pathlib import Path

from ozwald.agent.v1 import footprint_pb2

from ozwald_agent.admission.footprints import Footprint

_SCHEMA = """
CREATE TABLE IF NOT EXISTS footprints (
    realm TEXT NOT NULL,
    service TEXT NOT NULL,
    variety TEXT NOT NULL,
    profile TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    measured_at_ns INTEGER NOT NULL,
    footprint BLOB NOT NULL,
    PRIMARY KEY (realm, service, variety, profile)
);
"""
_COLUMNS = "footprint FROM footprints"
_ORDER = " ORDER BY realm, service, variety, profile"


class FootprintStore:
    """Thread-safe footprint storage; also admission's FootprintBook."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def record(self, footprint: footprint_pb2.Footprint) -> None:
        """Store `footprint`, replacing the one of the same combination."""
        with self._lock:
            self._db.execute(
                "INSERT INTO footprints (realm, service, variety, profile, fingerprint,"
                " measured_at_ns, footprint) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (realm, service, variety, profile) DO UPDATE SET"
                " fingerprint = excluded.fingerprint, measured_at_ns = excluded.measured_at_ns,"
                " footprint = excluded.footprint",
                (
                    footprint.realm,
                    footprint.service,
                    footprint.variety,
                    footprint.profile,
                    footprint.fingerprint,
                    footprint.measured_at.ToNanoseconds(),
                    footprint.SerializeToString(deterministic=True),
                ),
            )

    def get(
        self, realm: str, service: str, variety: str, profile: str
    ) -> footprint_pb2.Footprint | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} WHERE realm = ? AND service = ? AND variety = ?"
                " AND profile = ?",
                (realm, service, variety, profile),
            ).fetchone()
        return None if row is None else footprint_pb2.Footprint.FromString(row[0])

    def list(self, *, realm: str = "", service: str = "") -> list[footprint_pb2.Footprint]:
        """Every footprint (of `realm` and `service` when given), sorted."""
        where, args = _where(realm=realm, service=service)
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS}{where}{_ORDER}", args).fetchall()
        return [footprint_pb2.Footprint.FromString(row[0]) for row in rows]

    def forget(
        self, realm: str, service: str, *, variety: str | None = None, profile: str | None = None
    ) -> builtins.list[footprint_pb2.Footprint]:
        """Deletes the service's footprints (only `variety` / `profile` when given) and
        returns them; nothing stored is not an error."""
        where, args = _where(realm=realm, service=service, variety=variety, profile=profile)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                rows = self._db.execute(f"SELECT {_COLUMNS}{where}{_ORDER}", args).fetchall()
                self._db.execute(f"DELETE FROM footprints{where}", args)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return [footprint_pb2.Footprint.FromString(row[0]) for row in rows]

    # FootprintBook ------------------------------------------------------------------

    def footprint(
        self, realm: str, service: str, variety: str, profile: str, fingerprint: str
    ) -> Footprint | None:
        stored = self.get(realm, service, variety, profile)
        if stored is None:
            return None
        return Footprint(
            # 0 means "not measured" (a sample never came back), not "needs nothing".
            peak_memory_bytes=stored.peak_memory_bytes or None,
            peak_vram_bytes_per_gpu=(
                stored.peak_vram_bytes_per_gpu
                if stored.HasField("peak_vram_bytes_per_gpu")
                else None
            ),
            stale=stored.fingerprint != fingerprint,
        )


def _where(**columns: str | None) -> tuple[str, tuple[str, ...]]:
    """A WHERE clause for the columns given a value (None and "" mean "any", except
    variety and profile, where "" is a value: no variety, the base profile)."""
    parts: list[str] = []
    args: list[str] = []
    for column, value in columns.items():
        if value is None or (value == "" and column in ("realm", "service")):
            continue
        parts.append(f"{column} = ?")
        args.append(value)
    return (" WHERE " + " AND ".join(parts) if parts else ""), tuple(args)
