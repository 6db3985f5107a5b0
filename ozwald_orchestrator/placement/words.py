"""Quantities and names as placement's reasons write them ("24.0 GiB", "nvidia", "2nd")."""

from __future__ import annotations

from ozwald.common.v1 import gpu_pb2

GIB = 1 << 30
NVIDIA: int = gpu_pb2.GPU_VENDOR_NVIDIA
AMD: int = gpu_pb2.GPU_VENDOR_AMD
# "Any vendor" tries them in this order, as the agent's admission does.
VENDOR_PREFERENCE: tuple[int, ...] = (NVIDIA, AMD)

_VENDOR_WORDS: dict[int, str] = {NVIDIA: "nvidia", AMD: "amd"}


def vendor_word(vendor: int) -> str:
    return _VENDOR_WORDS.get(vendor, "any-vendor")


def gib(amount: int) -> str:
    return f"{amount / GIB:.1f} GiB"


def cores(milli: int) -> str:
    """Millicores as cores: "4", "1.5", "0.25"."""
    return f"{milli / 1000:g}"


def counted(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def ordinal(number: int) -> str:
    if number % 100 in (11, 12, 13):
        return f"{number}th"
    return f"{number}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(number % 10, 'th') }"
