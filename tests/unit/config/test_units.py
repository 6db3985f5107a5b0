"""Sizes and durations: every documented form, and the mistakes people make."""

from __future__ import annotations

import pytest

from ozwald_sdk.config import parse_duration, parse_size

KIB, MIB, GIB = 1024, 1024**2, 1024**3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (1048576, MIB),
        ("6GiB", 6 * GIB),
        ("512MiB", 512 * MIB),
        ("1.5GiB", 1536 * MIB),
        ("2Gi", 2 * GIB),
        ("1g", GIB),  # Docker's lowercase letters are binary
        ("1G", GIB),  # and so are the uppercase ones
        ("1.5G", 1536 * MIB),
        ("64m", 64 * MIB),
        ("8k", 8 * KIB),
        ("1GB", 1_000_000_000),  # units ending in B without the i are SI
        ("500MB", 500_000_000),
        ("10kB", 10_000),
        ("1gib", GIB),  # case does not matter
        ("100", 100),
        ("100B", 100),
        (" 2 GiB ", 2 * GIB),
        ("0.5k", 512),
        ("1.3k", 1331),  # fractions of a byte round down
        (4.0, 4),
    ],
)
def test_sizes(text: str | int | float, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    "text", ["6 gigs", "1x", "", "-1", -1, "GiB", True, 1.5, "1e3", "1PB", "nan"]
)
def test_bad_sizes(text: object) -> None:
    with pytest.raises(ValueError, match="a size like 6GiB"):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (30, 30.0),
        (2.5, 2.5),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("1.5h", 5400.0),
        ("45", 45.0),
        ("0s", 0.0),
    ],
)
def test_durations(text: str | int | float, expected: float) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["5 minutes", "1h 30m", "-5s", -1, "s", "1d", "", "nan", "inf", False, "30S"]
)
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match="a duration like 30s"):
        parse_duration(text)
