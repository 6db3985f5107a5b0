"""The fleet's event log: numbered events, stored in order, then handed to live watchers.

Events are numbered when they happen and reach watchers only after the store has them,
so a watcher never sees an event that a crash could take back, and a watcher that
resumes from the store after a break finds exactly what it saw live.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from ozwald.orchestrator.v1 import fleet_state_pb2

from ozwald_orchestrator.clock import Clock

logger = logging.getLogger(__name__)

# Events a watcher may fall behind by before it re-reads from the store instead.
SUBSCRIBER_BACKLOG = 10_000


class Subscription:
    """Live events for one watcher, in order, each after it was stored."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[fleet_state_pb2.FleetEvent] = asyncio.Queue(
            maxsize=SUBSCRIBER_BACKLOG
        )
        # Set when the queue overflowed: the watcher must re-read from the store.
        self.overflowed = False
        self.changed = asyncio.Event()

    def offer(self, event: fleet_state_pb2.FleetEvent) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
        self.changed.set()


class EventLog:
    """Numbers events and remembers those not yet stored."""

    def __init__(self, clock: Clock, last_sequence: int) -> None:
        self._clock = clock
        self._last = last_sequence
        self._unstored: list[fleet_state_pb2.FleetEvent] = []
        self._subscribers: set[Subscription] = set()
        self.stored_sequence = last_sequence

    @property
    def last_sequence(self) -> int:
        return self._last

    def record(
        self,
        kind: str,
        message: str,
        *,
        deployment: str = "",
        instance: str = "",
        host_id: str = "",
    ) -> fleet_state_pb2.FleetEvent:
        self._last += 1
        event = fleet_state_pb2.FleetEvent(
            sequence=self._last,
            kind=kind,
            deployment=deployment,
            instance=instance,
            host_id=host_id,
            message=message,
        )
        event.time.FromDatetime(self._clock.now())
        self._unstored.append(event)
        logger.info(
            "%s: %s",
            kind,
            message,
            extra={
                "event": kind,
                "sequence": event.sequence,
                **({"deployment": deployment} if deployment else {}),
                **({"instance": instance} if instance else {}),
                **({"host_id": host_id} if host_id else {}),
            },
        )
        return event

    def take_unstored(self) -> list[fleet_state_pb2.FleetEvent]:
        events, self._unstored = self._unstored, []
        return events

    def restore_unstored(self, events: Sequence[fleet_state_pb2.FleetEvent]) -> None:
        """Put back events whose write failed, ahead of newer ones."""
        self._unstored[:0] = events

    def stored(self, events: Sequence[fleet_state_pb2.FleetEvent]) -> None:
        """Hand events the store now has to the live watchers."""
        if not events:
            return
        self.stored_sequence = max(self.stored_sequence, events[-1].sequence)
        for subscription in self._subscribers:
            for event in events:
                subscription.offer(event)

    def subscribe(self) -> Subscription:
        subscription = Subscription()
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)
