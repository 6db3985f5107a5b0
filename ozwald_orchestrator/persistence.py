"""Write-behind of the in-memory fleet to the store, in batches.

Changes are marked here as they happen and written together: at once when a caller
must not go on before the store has them (an apply, a placement about to be sent to an
agent), and otherwise every `interval` seconds. Heartbeats and status reports thus
cost one transaction per interval for the whole fleet instead of one per message. The
marks name what changed, and the rows are built from the in-memory state when the batch
is taken, so a record changed ten times between two writes is written once.

Writes run on one dedicated thread, in the order batches were taken, and never on the
event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from google.protobuf.message import Message
from ozwald.agent.v1 import footprint_pb2
from ozwald.orchestrator.v1 import deployment_pb2

from ozwald_orchestrator.events import EventLog
from ozwald_orchestrator.state import FleetState
from ozwald_orchestrator.store.protocol import (
    DesiredVersion,
    FleetStore,
    RemovedDeployment,
    StoreBatch,
    StoredRollout,
)

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 0.25

T = TypeVar("T")
M = TypeVar("M", bound=Message)


class MarkObserver(Protocol):
    """Told of every mark as it is made, and asked to settle before each write: the
    audit trail (audit/trail.py), which thereby sees every change the store sees."""

    def instance_marked(self, instance_id: str) -> None: ...

    def host_marked(self, host_id: str) -> None: ...

    def assignment_marked(self, host_id: str) -> None: ...

    def desired_marked(
        self,
        upserts: Sequence[deployment_pb2.Deployment],
        removed: Sequence[RemovedDeployment],
    ) -> None: ...

    def rollout_marked(self, key: tuple[str, int], stored: Callable[[], StoredRollout]) -> None: ...

    def settle(self) -> None: ...


class _NoObserver:
    def instance_marked(self, instance_id: str) -> None:
        pass

    def host_marked(self, host_id: str) -> None:
        pass

    def assignment_marked(self, host_id: str) -> None:
        pass

    def desired_marked(
        self,
        upserts: Sequence[deployment_pb2.Deployment],
        removed: Sequence[RemovedDeployment],
    ) -> None:
        pass

    def rollout_marked(self, key: tuple[str, int], stored: Callable[[], StoredRollout]) -> None:
        pass

    def settle(self) -> None:
        pass


class Persister:
    """Collects what changed and writes it to the store in batches."""

    def __init__(self, store: FleetStore, state: FleetState, events: EventLog) -> None:
        self._store = store
        self._state = state
        self._events = events
        self._writer = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="store-writer"
        )
        self._desired: DesiredVersion | None = None
        self._deployments: list[deployment_pb2.Deployment] = []
        self._removed: list[RemovedDeployment] = []
        self._instances: set[str] = set()
        self._gpus: set[str] = set()
        self._deleted: set[str] = set()
        self._hosts: set[str] = set()
        self._seen: set[str] = set()
        self._assignments: set[str] = set()
        self._footprints: list[footprint_pb2.Footprint] = []
        # Rollouts that changed, by (deployment, id): each gives its stored form when the
        # batch is taken, so one that changed often is written once.
        self._rollouts: dict[tuple[str, int], Callable[[], StoredRollout]] = {}
        # Called on the event loop after each successful write, with the assignment
        # versions it stored: the sender may now send them.
        self.on_assignments_stored: Callable[[dict[str, int]], None] = lambda _: None
        self.observer: MarkObserver = _NoObserver()
        self.last_write_s = 0.0
        self.writes = 0

    def desired(
        self,
        version: DesiredVersion,
        deployments: list[deployment_pb2.Deployment],
        removed: list[RemovedDeployment],
    ) -> None:
        self._desired = version
        self._deployments.extend(deployments)
        self._removed.extend(removed)
        self.observer.desired_marked(deployments, removed)

    def instance(self, instance_id: str, *, gpus: bool = False) -> None:
        self._deleted.discard(instance_id)
        self._instances.add(instance_id)
        if gpus:
            self._gpus.add(instance_id)
        self.observer.instance_marked(instance_id)

    def instance_deleted(self, instance_id: str) -> None:
        self._instances.discard(instance_id)
        self._gpus.discard(instance_id)
        self._deleted.add(instance_id)
        self.observer.instance_marked(instance_id)

    def host(self, host_id: str) -> None:
        self._hosts.add(host_id)
        self.observer.host_marked(host_id)

    def host_seen(self, host_id: str) -> None:
        self._seen.add(host_id)

    def assignment(self, host_id: str) -> None:
        self._assignments.add(host_id)
        self.observer.assignment_marked(host_id)

    def footprints(self, footprints: list[footprint_pb2.Footprint]) -> None:
        self._footprints.extend(footprints)

    def rollout(self, key: tuple[str, int], stored: Callable[[], StoredRollout]) -> None:
        self._rollouts[key] = stored
        self.observer.rollout_marked(key, stored)

    def _take(self) -> tuple[StoreBatch, dict[str, int]]:
        state = self._state
        batch = StoreBatch(
            desired_version=self._desired,
            deployments=self._deployments,
            removed_deployments=self._removed,
            deleted_instances=sorted(self._deleted),
            events=self._events.take_unstored(),
            footprints=self._footprints,
            rollouts=[self._rollouts[key]() for key in sorted(self._rollouts)],
        )
        for instance_id in sorted(self._instances):
            record = state.instances.get(instance_id)
            if record is None:
                continue
            batch.instances.append(_copy(record.instance))
            if instance_id in self._gpus:
                batch.instance_gpus[instance_id] = record.gpus
        versions: dict[str, int] = {}
        for host_id in sorted(self._hosts | self._seen | self._assignments):
            host = state.hosts.get(host_id)
            if host is None:
                continue
            if host_id in self._hosts:
                batch.hosts.append(host.snapshot())
            elif host_id in self._seen:
                batch.last_seen[host_id] = host.last_seen_wall
            if host_id in self._assignments:
                batch.assignments[host_id] = _copy(host.assignment)
                versions[host_id] = host.assignment.version
        self._desired = None
        self._deployments = []
        self._removed = []
        self._instances = set()
        self._gpus = set()
        self._deleted = set()
        self._hosts = set()
        self._seen = set()
        self._assignments = set()
        self._footprints = []
        self._rollouts = {}
        return batch, versions

    def _put_back(self, batch: StoreBatch) -> None:
        """A write failed: mark its contents again so the next write retries them."""
        if batch.desired_version is not None and self._desired is None:
            self._desired = batch.desired_version
        self._deployments[:0] = batch.deployments
        self._removed[:0] = batch.removed_deployments
        self._instances.update(i.id for i in batch.instances)
        self._gpus.update(batch.instance_gpus)
        self._deleted.update(i for i in batch.deleted_instances if i not in self._instances)
        self._hosts.update(h.id for h in batch.hosts)
        self._seen.update(batch.last_seen)
        self._assignments.update(batch.assignments)
        self._footprints[:0] = batch.footprints
        for rollout in batch.rollouts:
            key = (rollout.rollout.deployment, rollout.rollout.id)
            self._rollouts.setdefault(key, functools.partial(_same, rollout))
        self._events.restore_unstored(batch.events)

    async def flush(self) -> None:
        """Write everything marked so far; returns once the store has it."""
        # A step that did not settle its changes is recorded now, never skipped.
        self.observer.settle()
        batch, versions = self._take()
        if batch.empty():
            return
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._writer, self._store.commit, batch)
        except Exception:
            self._put_back(batch)
            raise
        self.last_write_s = time.monotonic() - started
        self.writes += 1
        self._events.stored(batch.events)
        if versions:
            self.on_assignments_stored(versions)

    async def run(self, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        """Flush every `interval_s` until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.flush()
            except Exception:
                logger.exception("writing fleet state to the store failed; retrying")

    async def run_in_writer(self, call: Callable[[], T]) -> T:
        """Run a store read on the writer thread, ordered after the writes before it."""
        return await asyncio.get_running_loop().run_in_executor(self._writer, call)

    def close(self) -> None:
        self._writer.shutdown(wait=True)


def _same(stored: StoredRollout) -> StoredRollout:
    return stored


def _copy(message: M) -> M:
    copied = type(message)()
    copied.CopyFrom(message)
    return copied
