"""Write-behind: marks become one batch, a failed write is retried, watchers hear only
what was stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from ozwald.orchestrator.v1 import fleet_state_pb2

from ozwald_orchestrator.events import SUBSCRIBER_BACKLOG, EventLog
from ozwald_orchestrator.persistence import Persister
from ozwald_orchestrator.state import FleetState, InstanceRecord
from ozwald_orchestrator.store.protocol import StoreBatch
from ozwald_orchestrator.store.sqlite import SqliteFleetStore
from tests.unit.orchestrator.fakes import FakeClock


class FlakyStore(SqliteFleetStore):
    """Fails the next `failures` commits."""

    failures = 0
    commits = 0

    def commit(self, batch: StoreBatch) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("disk full")
        self.commits += 1
        super().commit(batch)


def _setup(tmp_path: Path) -> tuple[FlakyStore, FleetState, EventLog, Persister]:
    store = FlakyStore(tmp_path / "o.db")
    state = FleetState()
    events = EventLog(FakeClock(), 0)
    return store, state, events, Persister(store, state, events)


@pytest.mark.asyncio
async def test_many_changes_of_one_instance_are_written_once_as_the_last(tmp_path: Path) -> None:
    store, state, _, persister = _setup(tmp_path)
    record = InstanceRecord(instance=fleet_state_pb2.Instance(id="web-0", deployment="web"))
    state.add_instance(record)
    for restarts in range(1, 50):
        record.instance.agent_status.restart_count = restarts
        persister.instance("web-0")
    await persister.flush()
    assert store.commits == 1
    [stored] = store.load().instances
    assert stored.agent_status.restart_count == 49
    persister.close()


@pytest.mark.asyncio
async def test_a_failed_write_is_retried_with_everything_and_events_wait_for_it(
    tmp_path: Path,
) -> None:
    store, state, events, persister = _setup(tmp_path)
    subscription = events.subscribe()
    state.add_instance(InstanceRecord(instance=fleet_state_pb2.Instance(id="web-0")))
    persister.instance("web-0")
    events.record("instance-placed", "web-0 placed on h1")
    store.failures = 1
    with pytest.raises(OSError):
        await persister.flush()
    assert subscription.queue.empty()  # not stored, not heard
    events.record("instance-state", "web-0 running")
    await persister.flush()
    assert [i.id for i in store.load().instances] == ["web-0"]
    assert [e.sequence for e in store.read_events(0, 10)] == [1, 2]
    heard = [subscription.queue.get_nowait().sequence for _ in range(2)]
    assert heard == [1, 2]
    persister.close()


def test_a_watcher_that_falls_behind_is_told_to_reread() -> None:
    events = EventLog(FakeClock(), 0)
    subscription = events.subscribe()
    batch = [events.record("host-ready", f"h{i} ready") for i in range(SUBSCRIBER_BACKLOG + 1)]
    events.take_unstored()
    events.stored(batch)
    assert subscription.overflowed
    assert subscription.queue.qsize() == SUBSCRIBER_BACKLOG
