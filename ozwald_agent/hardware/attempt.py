"""Per-device facts that may fail alone: the failure becomes a warning, the device stays."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ozwald_agent.hardware.library_error import LibraryCallError

T = TypeVar("T")


def attempt(call: Callable[[], T], warn: Callable[[str], None], what: str) -> T | None:
    """`call()`, or None after warning "`what`: <the library's error>" when it fails."""
    try:
        return call()
    except LibraryCallError as e:
        warn(f"{what}: {e}")
        return None
