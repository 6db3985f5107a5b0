"""Exit events: parsed from engine events, deduplicated, and resumed across stream breaks."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from ozwald_agent.runtime.events import (
    ContainerExited,
    EventSource,
    EventsResumed,
    RuntimeEvent,
    watch_exits,
)
from ozwald_agent.runtime.labels import ServiceLabels
from ozwald_agent.runtime.streams import StoppableIterator

WEB = ServiceLabels(agent_id="a1", realm="main", service="web", fingerprint="fp")
T0 = 1_795_000_000  # a Unix time in seconds
BLOCK = "block"  # the stream stays open until closed
END = "end"  # the stream ends, as when the engine stops


def _event(
    action: str, second: int, nanos: int, container: str = "c1", **attrs: str
) -> dict[str, Any]:
    attributes = {"name": "ozwald-main-web", **WEB.to_labels(), **attrs}
    return {
        "Type": "container",
        "Action": action,
        "Actor": {"ID": container, "Attributes": attributes},
        "time": second,
        "timeNano": second * 1_000_000_000 + nanos,
    }


class _Stream:
    def __init__(self, events: list[dict[str, Any]], then: str) -> None:
        self._events = events
        self._then = then
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        yield from self._events
        if self._then == BLOCK:
            self.closed.wait(10)

    def close(self) -> None:
        self.closed.set()


class _Engine:
    """Answers each open with the next scripted stream (or error); records the `since`s."""

    def __init__(self, *script: _Stream | Exception) -> None:
        self._script = list(script)
        self.since: list[int | None] = []
        self.streams: list[_Stream] = []

    def open(self, since: int | None) -> EventSource:
        self.since.append(since)
        step = self._script.pop(0) if self._script else _Stream([], BLOCK)
        if isinstance(step, Exception):
            raise step
        self.streams.append(step)
        return step


def _take(watcher: StoppableIterator[RuntimeEvent], count: int) -> list[RuntimeEvent]:
    taken: list[RuntimeEvent] = []
    reader = threading.Thread(target=lambda: taken.extend(next(watcher) for _ in range(count)))
    reader.start()
    reader.join(5)
    watcher.close()
    assert not reader.is_alive(), f"only {len(taken)} of {count} events arrived"
    return taken


def _watch(engine: _Engine, since: datetime | None = None) -> StoppableIterator[RuntimeEvent]:
    return watch_exits(engine.open, since=since, retry_initial_s=0.001, retry_max_s=0.01)


def test_a_die_event_is_an_exit_with_its_code_and_service() -> None:
    engine = _Engine(_Stream([_event("die", T0, 5, exitCode="7")], BLOCK))

    (exited,) = _take(_watch(engine), 1)

    assert exited == ContainerExited(
        container_id="c1",
        name="ozwald-main-web",
        exit_code=7,
        oom_killed=False,
        at=datetime.fromtimestamp(T0 + 5e-9, UTC),
        service=WEB,
    )


def test_an_oom_event_marks_the_next_exit_of_that_container_only() -> None:
    engine = _Engine(
        _Stream(
            [
                _event("oom", T0, 1),
                _event("die", T0, 2, exitCode="137"),
                _event("die", T0, 3, container="c2", exitCode="0"),
                _event("die", T0 + 5, 0, exitCode="1"),
            ],
            BLOCK,
        )
    )

    events = _take(_watch(engine), 3)

    assert [(e.container_id, e.oom_killed) for e in events if isinstance(e, ContainerExited)] == [
        ("c1", True),
        ("c2", False),
        ("c1", False),
    ]


def test_after_a_break_it_resumes_from_the_last_second_without_duplicates() -> None:
    first = [_event("die", T0, 10, exitCode="1"), _event("die", T0 + 1, 20, exitCode="2")]
    # The engine replays from the whole second T0+1: the exit at +20 ns again, then new ones.
    replay = [
        _event("die", T0 + 1, 20, exitCode="2"),
        _event("die", T0 + 1, 30, container="c2", exitCode="3"),
    ]
    engine = _Engine(_Stream(first, END), _Stream(replay, BLOCK))

    events = _take(_watch(engine, since=datetime.fromtimestamp(T0 - 60, UTC)), 4)

    assert engine.since == [T0 - 60, T0 + 1]
    assert [type(e).__name__ for e in events] == [
        "ContainerExited",
        "ContainerExited",
        "EventsResumed",
        "ContainerExited",
    ]
    exits = [e for e in events if isinstance(e, ContainerExited)]
    assert [e.exit_code for e in exits] == [1, 2, 3]


def test_an_engine_that_is_down_is_retried_and_the_gap_reported_once() -> None:
    down = ConnectionError("connection refused")
    engine = _Engine(down, down, down, _Stream([_event("die", T0, 1, exitCode="0")], BLOCK))

    events = _take(_watch(engine), 2)

    assert isinstance(events[0], EventsResumed)
    assert "connection refused" in events[0].reason
    assert isinstance(events[1], ContainerExited)
    assert len(engine.since) == 4


def test_without_since_it_starts_from_now_and_resumes_from_when_it_opened() -> None:
    engine = _Engine(_Stream([], END), _Stream([], BLOCK))
    before = int(datetime.now(UTC).timestamp())

    events = _take(_watch(engine), 1)

    assert isinstance(events[0], EventsResumed)
    assert engine.since[0] is None
    second = engine.since[1]
    assert second is not None
    assert before <= second <= before + 2


def test_close_ends_a_watch_blocked_on_a_quiet_engine() -> None:
    engine = _Engine(_Stream([], BLOCK))
    watcher = _watch(engine)
    results: list[RuntimeEvent] = []
    reader = threading.Thread(target=lambda: results.extend(watcher))
    reader.start()
    while not engine.streams:
        reader.join(0.01)

    watcher.close()
    reader.join(2)

    assert not reader.is_alive()
    assert results == []
    assert engine.streams[0].closed.is_set()
