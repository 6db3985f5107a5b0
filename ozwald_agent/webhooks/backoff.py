"""When a failed post-event delivery is tried again.

Exponential with "equal jitter": before retry n the wait is half of base * 2**(n-1)
(capped), plus a random part up to the other half. Gaps therefore never shrink (each is
at least the largest the one before could be) while a herd of agents still spreads
out; a delivery gives up after its hook's `retries`, or once the next wait would pass
MAX_RETRY_SPAN_S after the first attempt.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Final

BASE_DELAY_S: Final = 1.0
MAX_DELAY_S: Final = 60.0
MAX_RETRY_SPAN_S: Final = 600.0


def retry_delay(
    retry: int,
    *,
    base_s: float = BASE_DELAY_S,
    cap_s: float = MAX_DELAY_S,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number `retry` (from 1)."""
    ceiling = min(cap_s, base_s * 2.0 ** (retry - 1))
    return ceiling / 2 + rand() * ceiling / 2
