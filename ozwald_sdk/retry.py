"""When and how long to wait before calling again.

Only UNAVAILABLE and RESOURCE_EXHAUSTED are retried, and only for idempotent calls:
anything else (INVALID_ARGUMENT, NOT_FOUND, INTERNAL, ...) would fail the same way again
or do the work twice. Delays grow exponentially and are fully jittered (gRPC's retry
design, A6), so clients that failed together do not come back together. All attempts
share the caller's one deadline.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc

from ozwald_sdk.errors import OzwaldError

logger = logging.getLogger(__name__)

T = TypeVar("T")

RETRYABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})


@dataclass(frozen=True)
class RetryPolicy:
    """At most `max_attempts` tries; before retry n, sleep up to initial * multiplier**(n-1)."""

    max_attempts: int = 4
    initial_backoff: float = 0.2
    max_backoff: float = 3.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0 < self.initial_backoff <= self.max_backoff:
            raise ValueError("need 0 < initial_backoff <= max_backoff")
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1 for the first retry)."""
        ceiling = min(self.max_backoff, self.initial_backoff * self.multiplier ** (retry - 1))
        return random.uniform(0, ceiling)


DEFAULT_RETRY = RetryPolicy()


def is_retryable(error: OzwaldError) -> bool:
    """Whether an idempotent call that failed this way may be tried again."""
    return error.code in RETRYABLE_CODES


def call_with_retry(
    attempt: Callable[[float], T],
    *,
    policy: RetryPolicy,
    timeout: float,
    idempotent: bool,
) -> T:
    """Run `attempt(seconds_left)` until it succeeds or may not be retried.

    Raises the last attempt's error, unchanged, when retries are exhausted, when the
    error is not retryable, or when waiting again would pass the deadline.
    """
    deadline = time.monotonic() + timeout
    for retry in range(policy.max_attempts):
        try:
            return attempt(deadline - time.monotonic())
        except OzwaldError as e:
            pause = _pause_before_retry(e, retry + 1, policy, deadline, idempotent)
            if pause is None:
                raise
        time.sleep(pause)
    raise AssertionError("unreachable: the last attempt returns or raises")


async def call_with_retry_async(
    attempt: Callable[[float], Awaitable[T]],
    *,
    policy: RetryPolicy,
    timeout: float,
    idempotent: bool,
) -> T:
    """`call_with_retry` for coroutines."""
    deadline = time.monotonic() + timeout
    for retry in range(policy.max_attempts):
        try:
            return await attempt(deadline - time.monotonic())
        except OzwaldError as e:
            pause = _pause_before_retry(e, retry + 1, policy, deadline, idempotent)
            if pause is None:
                raise
        await asyncio.sleep(pause)
    raise AssertionError("unreachable: the last attempt returns or raises")


def _pause_before_retry(
    error: OzwaldError, failed: int, policy: RetryPolicy, deadline: float, idempotent: bool
) -> float | None:
    """Seconds to wait before trying again after `failed` attempts, or None to give up."""
    if not idempotent or not is_retryable(error) or failed >= policy.max_attempts:
        return None
    pause = policy.delay(failed)
    if time.monotonic() + pause >= deadline:
        return None
    logger.debug(
        "attempt %d failed with %s, retrying in %.2f s",
        failed,
        error.code.name if error.code else "no status",
        pause,
        extra={"reason": error.reason},
    )
    return pause
