"""Time as the orchestrator reads it, so health and backoff logic can run on a fake clock."""

from __future__ import annotations

import datetime
import time
from typing import Protocol


class Clock(Protocol):
    """Monotonic seconds for timers, wall-clock time for what people and the store see."""

    def monotonic(self) -> float: ...

    def now(self) -> datetime.datetime: ...


class SystemClock:
    """The real clocks."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC)
