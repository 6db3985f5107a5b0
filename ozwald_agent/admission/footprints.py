"""Footprints: measured resource use that admission prefers over declared guesses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Footprint:
    """Measured peaks of one realm, service, variety and profile; None where not measured."""

    peak_memory_bytes: int | None = None
    # The highest peak over the service's GPUs: what it needs on each of them.
    peak_vram_bytes_per_gpu: int | None = None
    # Measured for another effective spec than the one asked about (the fingerprints
    # differ): admission does not count it, and says so.
    stale: bool = False


class FootprintBook(Protocol):
    def footprint(
        self, realm: str, service: str, variety: str, profile: str, fingerprint: str
    ) -> Footprint | None:
        """The footprint recorded for this combination, or None when there is none.

        `fingerprint` is the effective spec's being admitted; a footprint measured for
        another one comes back with `stale` set.
        """
        ...


class NoFootprints:
    """A book with nothing recorded: admission counts declared figures only."""

    def footprint(
        self, realm: str, service: str, variety: str, profile: str, fingerprint: str
    ) -> Footprint | None:
        return None
