"""How long an exited service waits before the agent starts it again."""

from __future__ import annotations

FIRST_DELAY_S = 1.0
MAX_DELAY_S = 60.0


def restart_delay(restarts_so_far: int) -> float:
    """1 s, 2 s, 4 s, ... capped at a minute: a crash loop costs the host little."""
    return min(FIRST_DELAY_S * 2.0 ** max(restarts_so_far, 0), MAX_DELAY_S)
