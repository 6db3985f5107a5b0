"""Text layout for people: byte sizes, labelled fields and tables that fit a width."""

from __future__ import annotations

import textwrap
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

WIDTH = 80
INDENT = "  "
LABEL_WIDTH = 18
ELLIPSIS = "…"

_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def human_bytes(count: int) -> str:
    """A byte count in binary units with one decimal, e.g. 1536 -> "1.5 KiB"."""
    if count < 1024:
        return f"{count} B"
    value = float(count)
    for unit in _UNITS:
        value /= 1024
        if value < 1024 or unit == _UNITS[-1]:
            break
    return f"{value:.1f} {unit}"


def gib(count: int) -> str:
    return f"{count / 1024**3:.1f}"


@dataclass
class Section:
    """A titled block: labelled fields, then any preformatted lines (e.g. a table)."""

    title: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def add(self, label: str, value: str) -> None:
        self.fields.append((label, value))

    def render(self, width: int = WIDTH) -> str:
        out = [self.title]
        for label, value in self.fields:
            out.extend(_field_lines(label, value, width))
        if self.lines:
            out.append("")
            out.extend(self.lines)
        return "\n".join(out)


def _field_lines(label: str, value: str, width: int) -> list[str]:
    head = f"{INDENT}{label:<{LABEL_WIDTH}}"
    hanging = " " * len(head)
    return textwrap.wrap(
        value or "-",
        width=width,
        initial_indent=head,
        subsequent_indent=hanging,
        break_on_hyphens=False,
    )


def render_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    shrink: int,
    right: Collection[int] = (),
    width: int = WIDTH,
) -> list[str]:
    """Columns two spaces apart, indented; column `shrink` is cut short (…) to fit `width`.

    Columns in `right` are right-aligned (numbers).
    """
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    overflow = len(INDENT) + sum(widths) + 2 * (len(widths) - 1) - width
    if overflow > 0:
        widths[shrink] = max(len(headers[shrink]), widths[shrink] - overflow)

    def line(cells: Sequence[str]) -> str:
        parts = []
        for index, (cell, column_width) in enumerate(zip(cells, widths, strict=True)):
            text = _cut(cell, column_width)
            parts.append(text.rjust(column_width) if index in right else text.ljust(column_width))
        return (INDENT + "  ".join(parts)).rstrip()

    return [line(headers), *(line(row) for row in rows)]


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + ELLIPSIS
