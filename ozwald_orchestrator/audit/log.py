"""`AuditLog`: the orchestrator's append-only, hash-chained record of actions and changes.

`record()` is called wherever something changes, often on the event loop and up to
thousands of times a second (instances changing state across a large fleet), so it
does no I/O: it numbers the record, chains its hash to the previous one under a lock
(the order of calls is the order of the chain), and queues it. One writer thread
commits whatever has queued in a single transaction (group commit), then refreshes the
head checkpoint about once a second. `flush()` / `flushed()` wait until everything
recorded so far is committed: an operator's call awaits that before it answers, so an
acknowledged action is always on record.

If a write fails (disk full), the records stay queued in order and the writer retries
with backoff; the chain is never forked. Records queued when the process dies are lost
from the end of the log, which the checkpoint reveals to `verify` only if they were
already in it; docs/audit.md says what the log can and cannot prove.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ozwald.orchestrator.v1 import audit_service_pb2

from ozwald_orchestrator.audit import table
from ozwald_orchestrator.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    read_checkpoint,
    write_checkpoint,
)
from ozwald_orchestrator.audit.kinds import is_kind
from ozwald_orchestrator.audit.table import AuditQuery, UnreadableRow
from ozwald_sdk.audit_chain import (
    ANCHOR_SOURCE,
    CHECKPOINT_SOURCE,
    Anchor,
    AuditBreak,
    ChainEntry,
    ChainWalker,
    canonical_json,
    entry_digest,
    record_from_entry,
    response_of,
    time_us_of,
)

logger = logging.getLogger(__name__)

CHECKPOINT_SUFFIX = ".audit-head"
DEFAULT_CHECKPOINT_INTERVAL_S = 1.0
# One transaction holds at most this many records, so a backlog cannot hold SQLite's
# write lock (shared with the fleet store) for long.
MAX_BATCH = 5_000
_RETRY_FIRST_S = 0.05
_RETRY_MAX_S = 5.0
# Attempts to write what is still queued when the log closes.
_CLOSE_ATTEMPTS = 5


_SECOND_WRITER_HINT = (
    "; another process appended to this audit log: is a second orchestrator using the "
    "same state directory?"
)


class AuditLogClosedError(Exception):
    """record() after close()."""


class AuditWriteError(Exception):
    """Records could not be committed (the log closed while writes kept failing)."""


def default_checkpoint_path(database: Path) -> Path:
    """`orchestrator.db` -> `orchestrator.db.audit-head`, beside it."""
    return database.with_name(database.name + CHECKPOINT_SUFFIX)


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class AuditLog:
    """The audit table in the SQLite file at `path`, with its own connections.

    `now` supplies record times (the orchestrator's Clock.now fits). Thread-safe.
    Call `close()` once when done: it commits what is queued and writes the checkpoint.
    """

    def __init__(
        self,
        path: Path,
        *,
        checkpoint_path: Path | None = None,
        now: Callable[[], datetime.datetime] = _utc_now,
        checkpoint_interval_s: float = DEFAULT_CHECKPOINT_INTERVAL_S,
    ) -> None:
        self.path = path
        self.checkpoint_path = checkpoint_path or default_checkpoint_path(path)
        self._now = now
        self._checkpoint_interval_s = checkpoint_interval_s
        self._db = table.open_writer(path)
        try:
            sequence, digest = table.head(self._db)
            # A checkpoint the log no longer reaches is evidence: keep it as it is.
            self._checkpoint_frozen = not self._checkpoint_consistent(sequence)
        except BaseException:
            self._db.close()
            raise
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._sequence = sequence
        self._hash = digest
        self._queue: list[ChainEntry] = []
        self._durable = sequence
        self._durable_hash = digest
        self._checkpointed = sequence
        self._last_checkpoint = float("-inf")
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._closing = False
        self._closed = False
        self._failure: Exception | None = None
        self.commits = 0
        self._writer = threading.Thread(target=self._write_loop, name="audit-writer", daemon=True)
        self._writer.start()

    # Recording ----------------------------------------------------------------------

    def record(
        self,
        actor: str,
        kind: str,
        *,
        deployment: str = "",
        host_id: str = "",
        instance: str = "",
        before: Any = None,
        after: Any = None,
    ) -> int:
        """Append a record; returns its sequence. No I/O: the writer commits it shortly.

        `before` and `after` are the state before and after the change: JSON-able values
        (dicts, lists, text, numbers, booleans) or protobuf messages, None for "none"
        (before a creation, after a deletion). They are encoded at once, so the caller
        may change them afterwards. Raises ValueError for an empty actor, a kind that is
        not kebab-case, or a state JSON cannot hold.
        """
        if not actor:
            raise ValueError("an audit record needs an actor")
        if not is_kind(kind):
            raise ValueError(f"audit kind {kind!r} is not a kebab-case word")
        before_json = canonical_json(before)
        after_json = canonical_json(after)
        with self._lock:
            if self._closing:
                raise AuditLogClosedError("the audit log is closed")
            # Read under the lock so that times follow sequences (while the clock does).
            time_us = time_us_of(self._now())
            sequence = self._sequence + 1
            digest = entry_digest(
                sequence=sequence,
                time_us=time_us,
                actor=actor,
                kind=kind,
                deployment=deployment,
                host_id=host_id,
                instance=instance,
                before_json=before_json,
                after_json=after_json,
                prev_hash=self._hash,
            )
            self._queue.append(
                ChainEntry(
                    sequence,
                    time_us,
                    actor,
                    kind,
                    deployment,
                    host_id,
                    instance,
                    before_json,
                    after_json,
                    self._hash,
                    digest,
                )
            )
            self._sequence = sequence
            self._hash = digest
            self._changed.notify_all()
        return sequence

    @property
    def head_sequence(self) -> int:
        """The last sequence recorded (committed or still queued)."""
        with self._lock:
            return self._sequence

    @property
    def durable_sequence(self) -> int:
        """The last sequence committed to the database."""
        with self._lock:
            return self._durable

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything recorded so far is committed; False if `timeout` passed."""
        with self._lock:
            target = self._sequence
            return self._changed.wait_for(
                lambda: self._durable >= target or self._closed, timeout=timeout
            ) and (self._durable >= target)

    async def flushed(self) -> None:
        """Await until everything recorded so far is committed (the event loop's flush).
        Raises AuditWriteError if the log closed with it uncommitted."""
        loop = asyncio.get_running_loop()
        with self._lock:
            target = self._sequence
            if self._durable >= target:
                return
            if self._closed:
                raise AuditWriteError(f"audit records up to {target} were not committed")
            future: asyncio.Future[None] = loop.create_future()
            self._waiters.append((target, loop, future))
        await future

    # Reading ------------------------------------------------------------------------

    def query(self, query: AuditQuery) -> tuple[list[audit_service_pb2.AuditRecord], bool]:
        """Committed records matching `query`, by sequence, and whether more follow.
        Blocking (SQLite): from the event loop, run it in a thread."""
        db = table.open_reader(self.path)
        try:
            entries, more = table.select(db, query)
        finally:
            db.close()
        return [record_from_entry(e) for e in entries], more

    def verify(
        self, anchor_sequence: int = 0, anchor_hash: str = ""
    ) -> audit_service_pb2.VerifyAuditLogResponse:
        """Walk the committed chain from record 1 and report the first break; also
        require the head checkpoint and the anchor (when given) to still be in the log.
        Blocking, and reads every record: from the event loop, run it in a thread."""
        # The checkpoint is read before the walk's snapshot is taken: it is written after
        # each commit, so the snapshot always reaches an honest checkpoint.
        damaged = ""
        try:
            checkpoint = read_checkpoint(self.checkpoint_path)
        except CheckpointError as e:
            checkpoint, damaged = None, str(e)
        anchors: list[Anchor] = []
        if checkpoint is not None and checkpoint.sequence > 0:
            anchors.append(Anchor(checkpoint.sequence, checkpoint.hash, CHECKPOINT_SOURCE))
        if anchor_sequence > 0:
            anchors.append(Anchor(anchor_sequence, anchor_hash, ANCHOR_SOURCE))
        walker = ChainWalker()
        walker.watch(a.sequence for a in anchors)
        db = table.open_reader(self.path)
        try:
            for item in table.walk(db):
                if isinstance(item, UnreadableRow):
                    walker.unreadable(item.sequence, item.why)
                    break
                if not walker.feed(item):
                    break
        finally:
            db.close()
        for anchor in anchors:
            if not walker.check_anchor(anchor):
                break
        response = response_of(walker, anchors)
        if response.ok and damaged:
            response.ok = False
            response.break_kind = AuditBreak.AUDIT_BREAK_ANCHOR_MISMATCH
            response.problem = (
                f"the records check out, but the head checkpoint is damaged ({damaged}): "
                "it was changed by hand"
            )
        return response

    # Writing ------------------------------------------------------------------------

    def _write_loop(self) -> None:
        failures = 0
        while True:
            with self._lock:
                while not self._queue and not self._closing:
                    due = self._checkpoint_due()
                    if due is not None and due <= 0:
                        break
                    self._changed.wait(timeout=due)
                batch = self._queue[:MAX_BATCH]
                closing = self._closing
            if batch:
                try:
                    table.append(self._db, batch)
                except Exception as e:
                    failures += 1
                    if closing and failures >= _CLOSE_ATTEMPTS:
                        self._give_up(e)
                        return
                    pause = min(_RETRY_MAX_S, _RETRY_FIRST_S * 2 ** (failures - 1))
                    logger.error(
                        "cannot write %d audit records from sequence %d (attempt %d, next "
                        "in %.2fs): %s%s",
                        len(batch),
                        batch[0].sequence,
                        failures,
                        pause,
                        e,
                        _SECOND_WRITER_HINT if isinstance(e, sqlite3.IntegrityError) else "",
                    )
                    time.sleep(pause)
                    continue
                failures = 0
                self._committed(batch)
            self._maybe_checkpoint(force=closing)
            if closing:
                with self._lock:
                    if not self._queue:
                        return

    def _committed(self, batch: list[ChainEntry]) -> None:
        with self._lock:
            del self._queue[: len(batch)]
            self._durable = batch[-1].sequence
            self._durable_hash = batch[-1].hash
            self.commits += 1
            ready = [w for w in self._waiters if w[0] <= self._durable]
            self._waiters = [w for w in self._waiters if w[0] > self._durable]
            self._changed.notify_all()
        for _, loop, future in ready:
            _settle(loop, future, None)

    def _give_up(self, error: Exception) -> None:
        with self._lock:
            lost = len(self._queue)
            self._failure = AuditWriteError(f"{lost} audit records could not be written: {error}")
            waiters, self._waiters = self._waiters, []
            self._changed.notify_all()
        logger.error(
            "closing the audit log with %d records unwritten (from sequence %d): %s",
            lost,
            self._durable + 1,
            error,
        )
        for _, loop, future in waiters:
            _settle(loop, future, self._failure)

    def _checkpoint_due(self) -> float | None:
        """Seconds until the checkpoint should be written; None when it is current."""
        if self._checkpoint_frozen or self._checkpointed >= self._durable:
            return None
        return self._last_checkpoint + self._checkpoint_interval_s - time.monotonic()

    def _maybe_checkpoint(self, *, force: bool) -> None:
        with self._lock:
            due = self._checkpoint_due()
            sequence, digest = self._durable, self._durable_hash
        if due is None or (due > 0 and not force):
            return
        try:
            write_checkpoint(self.checkpoint_path, Checkpoint(sequence, digest))
        except OSError as e:
            logger.error("cannot write the audit head checkpoint %s: %s", self.checkpoint_path, e)
        else:
            with self._lock:
                self._checkpointed = sequence
        self._last_checkpoint = time.monotonic()

    def _checkpoint_consistent(self, head_sequence: int) -> bool:
        """Whether the checkpoint left by the last run is still in the log; logs why not."""
        try:
            checkpoint = read_checkpoint(self.checkpoint_path)
        except CheckpointError as e:
            logger.error("the audit head checkpoint is damaged, keeping it as evidence: %s", e)
            return False
        if checkpoint is None or checkpoint.sequence == 0:
            return True
        if checkpoint.sequence > head_sequence:
            logger.error(
                "the audit log ends at record %d but its checkpoint %s says record %d was "
                "written: records were removed; `ozwald audit verify` reports it",
                head_sequence,
                self.checkpoint_path,
                checkpoint.sequence,
            )
            return False
        if table.hash_at(self._db, checkpoint.sequence) != checkpoint.hash:
            logger.error(
                "audit record %d differs from the checkpoint %s: the log was rewritten; "
                "`ozwald audit verify` reports it",
                checkpoint.sequence,
                self.checkpoint_path,
            )
            return False
        return True

    def close(self) -> None:
        """Commit what is queued, write the checkpoint, close the database. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closing = True
            self._changed.notify_all()
        self._writer.join()
        with self._lock:
            self._closed = True
            waiters, self._waiters = self._waiters, []
            self._changed.notify_all()
        for _, loop, future in waiters:
            _settle(loop, future, self._failure or AuditWriteError("the audit log closed"))
        self._db.close()


def _settle(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[None], error: Exception | None
) -> None:
    def settle() -> None:
        if future.done():
            return
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)

    # A closed loop raises RuntimeError: nobody is waiting any more.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(settle)
