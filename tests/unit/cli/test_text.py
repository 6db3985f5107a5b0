"""Text helpers: byte sizes people read, and tables that never pass 80 columns."""

from __future__ import annotations

import pytest

from ozwald_sdk.cli.text import Section, human_bytes, render_table


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1536, "1.5 KiB"),
        (80 * 1024**3, "80.0 GiB"),
        (2 * 1024**4, "2.0 TiB"),
        (3 * 1024**7, "3072.0 EiB"),
    ],
)
def test_human_bytes(count: int, text: str) -> None:
    assert human_bytes(count) == text


def test_table_cuts_the_chosen_column_to_fit() -> None:
    lines = render_table(
        ["#", "Name", "Procs"],
        [["0", "x" * 100, "3"], ["10", "short", "12"]],
        shrink=1,
        right={0, 2},
        width=40,
    )
    assert max(len(line) for line in lines) == 40
    assert lines[1].rstrip().endswith("…      3")
    assert lines[2] == "  10  short" + " " * 27 + "12"


def test_section_wraps_long_values_under_the_value_column() -> None:
    section = Section("Host")
    section.add("Detail", "word " * 30)
    section.add("Empty", "")
    lines = section.render(width=50).splitlines()
    assert lines[0] == "Host"
    assert all(len(line) <= 50 for line in lines)
    assert lines[2].startswith(" " * 20 + "word")
    assert lines[-1].split() == ["Empty", "-"]
