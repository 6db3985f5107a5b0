"""Wakes watchers when the agent records a service event."""

from __future__ import annotations

import threading


class EventFeed:
    """A sequence number watchers can wait on; the events themselves live in the store."""

    def __init__(self, last_sequence: int) -> None:
        self._changed = threading.Condition()
        self._last = last_sequence
        self._closed = False

    def published(self, sequence: int) -> None:
        with self._changed:
            self._last = max(self._last, sequence)
            self._changed.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Wake every waiter for good (the agent is stopping)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def wait_beyond(self, sequence: int, timeout_s: float) -> bool:
        """Block until an event after `sequence` exists; False on timeout or close."""
        with self._changed:
            self._changed.wait_for(lambda: self._closed or self._last > sequence, timeout_s)
            return not self._closed and self._last > sequence
