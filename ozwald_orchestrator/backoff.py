"""How long an instance that keeps failing waits before it is placed again."""

from __future__ import annotations

import random

BASE_S = 1.0
CAP_S = 60.0


def failure_delay(failures: int, rng: random.Random) -> float:
    """1 s doubling to 60 s, jittered by ±25 % so that many instances failing together
    (a host refusing them all) do not all come back in the same instant."""
    if failures <= 0:
        return 0.0
    delay = min(CAP_S, BASE_S * 2 ** (failures - 1))
    jittered: float = delay * rng.uniform(0.75, 1.25)
    return min(CAP_S, jittered)
