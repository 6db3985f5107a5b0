"""Figures as people read them in refusals: GiB with one decimal, cores, counted nouns."""

from __future__ import annotations

GIB = 1 << 30


def gib(size_bytes: float) -> str:
    return f"{size_bytes / GIB:.1f} GiB"


def cores(amount: float) -> str:
    """1.5 -> "1.5", 8.0 -> "8": no trailing ".0" for whole cores."""
    return f"{amount:g}"


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """counted(1, "GPU") -> "1 GPU"; counted(2, "GPU") -> "2 GPUs"."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"
