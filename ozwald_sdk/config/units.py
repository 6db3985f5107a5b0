"""Sizes ("6GiB", "1g", 1048576) and durations ("30s", "1h30m", 2.5) as config values.

Sizes: an integer number of bytes, or a number with a unit. Units ending in "iB" or
"i" (KiB, MiB, GiB, TiB; Ki, Mi, Gi, Ti) are binary (1024-based), and so are the bare
letters k, m, g, t in either case, as Docker reads them (`--memory 6g`). Units ending
in "B" without the "i" (kB, MB, GB, TB) are decimal (1000-based), as in SI. Units are
case-insensitive; "B" or no unit means bytes; fractions round down to whole bytes.

Durations: a number of seconds, or a sequence of number+unit parts with units ms, s,
m, h, as in Go ("500ms", "30s", "5m", "1h30m", "1.5h").
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Final

from pydantic import BeforeValidator, Field

from ozwald_sdk.config.problems import expected

SIZE_FORMS: Final = "a size like 6GiB, 512MiB, 1g, 1.5G or a whole number of bytes"
POSITIVE_SIZE_FORMS: Final = "a size above zero, like 6GiB, 512MiB, 1g or a number of bytes"
DURATION_FORMS: Final = "a duration like 30s, 5m, 1h30m, 500ms or a number of seconds"

_KI, _MI, _GI, _TI = 1024, 1024**2, 1024**3, 1024**4
_SIZE_UNITS: Final[dict[str, int]] = {
    "": 1,
    "b": 1,
    "k": _KI,
    "m": _MI,
    "g": _GI,
    "t": _TI,
    "ki": _KI,
    "mi": _MI,
    "gi": _GI,
    "ti": _TI,
    "kib": _KI,
    "mib": _MI,
    "gib": _GI,
    "tib": _TI,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
}
_SIZE: Final = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*([A-Za-z]*)\s*")
_DURATION_PART: Final = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(ms|h|m|s)")
_DURATION_UNITS: Final[dict[str, Decimal]] = {
    "ms": Decimal("0.001"),
    "s": Decimal(1),
    "m": Decimal(60),
    "h": Decimal(3600),
}


def parse_size(value: object) -> int:
    """Bytes in `value`; raises ValueError naming the accepted forms."""
    if isinstance(value, bool):
        raise ValueError(SIZE_FORMS)
    if isinstance(value, int):
        if value < 0:
            raise ValueError(SIZE_FORMS)
        return value
    if isinstance(value, float):
        if not value.is_integer() or value < 0:
            raise ValueError(SIZE_FORMS)
        return int(value)
    if isinstance(value, str):
        match = _SIZE.fullmatch(value)
        if match:
            factor = _SIZE_UNITS.get(match.group(2).lower())
            if factor is not None:
                return int(Decimal(match.group(1)) * factor)
    raise ValueError(SIZE_FORMS)


def parse_duration(value: object) -> float:
    """Seconds in `value`; raises ValueError naming the accepted forms."""
    if isinstance(value, bool):
        raise ValueError(DURATION_FORMS)
    if isinstance(value, int | float):
        if value < 0 or not math.isfinite(value):
            raise ValueError(DURATION_FORMS)
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        seconds: Decimal | None
        try:
            seconds = Decimal(text)
        except InvalidOperation:
            seconds = _duration_parts(text)
        if seconds is not None and seconds.is_finite() and seconds >= 0:
            return float(seconds)
    raise ValueError(DURATION_FORMS)


def _duration_parts(text: str) -> Decimal | None:
    if not text or _DURATION_PART.sub("", text):
        return None
    return sum(
        (Decimal(number) * _DURATION_UNITS[unit] for number, unit in _DURATION_PART.findall(text)),
        Decimal(0),
    )


def _size_field(value: Any) -> int:
    try:
        return parse_size(value)
    except ValueError:
        raise expected(SIZE_FORMS) from None


def _positive_size_field(value: Any) -> int:
    size = _size_field(value)
    if size == 0:
        raise expected(POSITIVE_SIZE_FORMS)
    return size


def _duration_field(value: Any) -> float:
    try:
        return parse_duration(value)
    except ValueError:
        raise expected(DURATION_FORMS) from None


# What editors check through the JSON Schema; the parsers above are the reference.
_SIZE_SCHEMA_PATTERN: Final = r"^\s*(\d+(\.\d+)?|\.\d+)\s*([kKmMgGtT][iI]?[bB]?|[bB])?\s*$"
_DURATION_SCHEMA_PATTERN: Final = r"^\s*((\d+(\.\d+)?|\.\d+)|((\d+(\.\d+)?|\.\d+)(ms|h|m|s))+)\s*$"

PositiveSize = Annotated[
    int,
    BeforeValidator(
        _positive_size_field,
        json_schema_input_type=Annotated[int, Field(ge=1)]
        | Annotated[str, Field(pattern=_SIZE_SCHEMA_PATTERN)],
    ),
]
"""Bytes above zero, written as an integer or a size string (see the module docstring)."""

Duration = Annotated[
    float,
    BeforeValidator(
        _duration_field,
        json_schema_input_type=Annotated[float, Field(ge=0)]
        | Annotated[str, Field(pattern=_DURATION_SCHEMA_PATTERN)],
    ),
]
"""Seconds, written as a number or a duration string (see the module docstring)."""
