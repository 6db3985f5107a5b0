"""How long the link waits before reopening a broken stream.

0.5 s doubling to 10 s with equal jitter (see webhooks/backoff.py): agents that lost the
orchestrator together, when it restarted, do not all come back in the same instant, and
an orchestrator that is down for long is asked only every 5 to 10 s.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Final

from ozwald_agent.webhooks.backoff import retry_delay

FIRST_DELAY_S: Final = 0.5
MAX_DELAY_S: Final = 10.0


class ReconnectBackoff:
    """`next_delay()` after each failed attempt; `reset()` once a session is registered."""

    def __init__(
        self,
        first_s: float = FIRST_DELAY_S,
        cap_s: float = MAX_DELAY_S,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._first_s = first_s
        self._cap_s = cap_s
        self._rand = rand
        self._failures = 0

    @property
    def failures(self) -> int:
        """Attempts that failed since the last reset."""
        return self._failures

    def next_delay(self) -> float:
        self._failures += 1
        return retry_delay(self._failures, base_s=self._first_s, cap_s=self._cap_s, rand=self._rand)

    def reset(self) -> None:
        self._failures = 0
