"""Container exits, from the engine's event stream, across engine restarts.

The reconciler learns that a container exited from here (not by polling): the engine's
`die` events for this agent's containers, with the exit code, and whether the kernel's OOM
killer did it (an `oom` event precedes the `die`).

When the stream breaks (engine stopped or restarted), the watcher reconnects with backoff
and asks the engine for events since the last one seen, dropping duplicates. The engine
keeps only a short history in memory, and none across its own restart, so after a gap the
watcher yields `EventsResumed` first: the caller must then list its containers again
(`ContainerRuntime.list_managed`) rather than trust that it saw every exit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from ozwald_agent.runtime.labels import ServiceLabels
from ozwald_agent.runtime.streams import Closeable, StoppableIterator

logger = logging.getLogger(__name__)

RETRY_INITIAL_S = 0.5
RETRY_MAX_S = 10.0
_NS = 1_000_000_000


@dataclass(frozen=True)
class ContainerExited:
    """A container of this agent's exited (crashed, finished, was stopped or killed)."""

    container_id: str
    name: str
    exit_code: int
    oom_killed: bool
    at: datetime
    service: ServiceLabels | None


@dataclass(frozen=True)
class EventsResumed:
    """The event stream was broken from `since` until now; exits in between may be missing."""

    since: datetime
    reason: str


RuntimeEvent = ContainerExited | EventsResumed


class EventSource(Closeable, Protocol):
    """Decoded engine events, closeable from another thread (the SDK's CancellableStream)."""

    def __iter__(self) -> Iterator[Mapping[str, Any]]: ...


# Opens the engine's event stream from a Unix time in whole seconds (None: from now).
EventSourceOpener = Callable[[int | None], EventSource]


def watch_exits(
    open_stream: EventSourceOpener,
    *,
    since: datetime | None = None,
    retry_initial_s: float = RETRY_INITIAL_S,
    retry_max_s: float = RETRY_MAX_S,
) -> StoppableIterator[RuntimeEvent]:
    """Exits as they happen (from `since` when given), until `close()`.

    `open_stream(since_seconds)` must return an iterator of decoded engine events that has
    `close()`, already filtered to this agent's containers and the `die` and `oom` actions.
    """

    def produce(watcher: StoppableIterator[RuntimeEvent]) -> Iterator[RuntimeEvent]:
        return _Watch(open_stream, since, retry_initial_s, retry_max_s).run(watcher)

    return StoppableIterator(produce)


class _Watch:
    def __init__(
        self,
        open_stream: EventSourceOpener,
        since: datetime | None,
        retry_initial_s: float,
        retry_max_s: float,
    ) -> None:
        self._open = open_stream
        self._since_s: int | None = int(since.timestamp()) if since else None
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        # The newest event time yielded, and the events at exactly that time: a replay from
        # its second (the engine's `since` has whole-second resolution) yields nothing twice.
        self._seen_ns = -1
        self._seen: set[tuple[int, str, str]] = set()
        self._oom: set[str] = set()

    def run(self, watcher: StoppableIterator[RuntimeEvent]) -> Iterator[RuntimeEvent]:
        delay = self._retry_initial_s
        gap: EventsResumed | None = None
        while not watcher.closed:
            opened_s = int(time.time())
            try:
                stream = self._open(self._since_s)
            except Exception as e:
                if gap is None:
                    gap = EventsResumed(datetime.now(UTC), f"cannot open the event stream: {e}")
                    logger.warning("engine event stream unavailable: %s", e)
                if watcher.wait(delay):
                    return
                delay = min(delay * 2, self._retry_max_s)
                continue
            watcher.attach(stream)
            if self._since_s is None:
                self._since_s = opened_s
            delay = self._retry_initial_s
            if gap is not None:
                logger.info("engine event stream reopened after: %s", gap.reason)
                yield gap
                gap = None
            try:
                for raw in stream:
                    event = self._accept(raw)
                    if event is not None:
                        yield event
            except Exception as e:
                logger.warning("engine event stream broke: %s", e)
            if watcher.closed:
                return
            gap = EventsResumed(datetime.now(UTC), "the engine's event stream ended")
            logger.warning("engine event stream ended; reconnecting")

    def _accept(self, raw: Mapping[str, Any]) -> ContainerExited | None:
        time_ns = int(raw.get("timeNano") or int(raw.get("time") or 0) * _NS)
        actor = raw.get("Actor") or {}
        container_id = str(actor.get("ID") or raw.get("id") or "")
        action = str(raw.get("Action") or raw.get("status") or "")
        key = (time_ns, container_id, action)
        if time_ns < self._seen_ns or key in self._seen:
            return None
        if time_ns > self._seen_ns:
            self._seen.clear()
        self._seen.add(key)
        self._seen_ns = time_ns
        self._since_s = time_ns // _NS
        attributes: Mapping[str, str] = actor.get("Attributes") or {}
        if action == "oom":
            self._oom.add(container_id)
            return None
        if action != "die":
            return None
        try:
            exit_code = int(attributes.get("exitCode", "-1"))
        except ValueError:
            exit_code = -1
        return ContainerExited(
            container_id=container_id,
            name=str(attributes.get("name", "")),
            exit_code=exit_code,
            oom_killed=self._take_oom(container_id),
            at=datetime.fromtimestamp(time_ns / _NS, UTC),
            service=ServiceLabels.from_labels(attributes),
        )

    def _take_oom(self, container_id: str) -> bool:
        if container_id in self._oom:
            self._oom.discard(container_id)
            return True
        return False
