"""Placement strategies, chosen by name: how the hosts that pass every filter are ranked.

A strategy is a plugin (`strategy_by_name`); anything that fits the `Strategy` protocol
(ranking.py) can be handed to the Scheduler, and mypy checks that it does. Built in:

- binpack (binpack.py): best fit that avoids stranding GPUs: fill GPUs, and hosts, as
  far as they go, without using up the cores and memory their free GPUs need.
- spread (spread.py): the fewest instances of the same deployment, then the roomiest.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping

from ozwald_orchestrator.placement.binpack import Binpack
from ozwald_orchestrator.placement.ranking import (
    Choice,
    SortKey,
    Strategy,
    gpus_taken,
    reserved_vram,
    scan_all,
    taken_by_earlier,
)
from ozwald_orchestrator.placement.spread import Spread

__all__ = [
    "STRATEGIES",
    "Binpack",
    "Choice",
    "SortKey",
    "Spread",
    "Strategy",
    "gpus_taken",
    "reserved_vram",
    "scan_all",
    "strategy_by_name",
    "taken_by_earlier",
]

STRATEGIES: Mapping[str, Callable[[], Strategy]] = {
    "binpack": Binpack,
    "spread": Spread,
}


def strategy_by_name(name: str) -> Strategy:
    """The strategy called `name`. Raises ValueError naming the known ones."""
    factory = STRATEGIES.get(name)
    if factory is None:
        known = ", ".join(sorted(STRATEGIES))
        close = difflib.get_close_matches(name, list(STRATEGIES), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"unknown placement strategy {name!r}{hint}; known strategies: {known}. "
            "Choose one of them (`--strategy`)."
        )
    return factory()
