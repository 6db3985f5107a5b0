"""A session's heartbeats: one every interval, numbered from 1, on a thread of their own
so that a slow profile collection or assignment never delays them past the TTL."""

from __future__ import annotations

import threading

from ozwald_agent.fleet import messages
from ozwald_agent.fleet.outbox import Outbox


class Heartbeats:
    def __init__(self, outbox: Outbox, interval_s: float, stop: threading.Event) -> None:
        self._outbox = outbox
        self._interval_s = interval_s
        self._stop = stop
        self.sent = 0

    def run(self) -> None:
        while not self._stop.wait(self._interval_s):
            if self._outbox.closed:
                return
            if self._outbox.put_heartbeat(lambda: messages.heartbeat(self.sent + 1)):
                self.sent += 1
