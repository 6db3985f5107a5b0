"""Reconnect delays: 0.5 s doubling to 10 s, jittered, back to the start after a session."""

from __future__ import annotations

import pytest

from ozwald_agent.fleet.backoff import ReconnectBackoff


def _ceilings(rand: float, attempts: int) -> list[float]:
    backoff = ReconnectBackoff(rand=lambda: rand)
    return [backoff.next_delay() for _ in range(attempts)]


def test_delays_double_from_half_a_second_up_to_ten() -> None:
    assert _ceilings(1.0, 8) == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


def test_jitter_takes_up_to_half_of_each_delay_off() -> None:
    assert _ceilings(0.0, 6) == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0]


@pytest.mark.parametrize("seed", range(5))
def test_jittered_delays_stay_within_their_bounds(seed: int) -> None:
    import random

    rng = random.Random(seed)
    backoff = ReconnectBackoff(rand=rng.random)
    for attempt in range(1, 12):
        ceiling = min(10.0, 0.5 * 2 ** (attempt - 1))
        assert ceiling / 2 <= backoff.next_delay() <= ceiling


def test_reset_starts_again_from_the_first_delay() -> None:
    backoff = ReconnectBackoff(rand=lambda: 1.0)
    for _ in range(6):
        backoff.next_delay()
    assert backoff.failures == 6

    backoff.reset()

    assert backoff.failures == 0
    assert backoff.next_delay() == 0.5
