"""One problem found in a config file, located to the line and column a person edits."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

Path = tuple[str | int, ...]
"""Keys and list indices from the top of the document down to a value."""

_PLAIN_KEY: Final = re.compile(r"^[A-Za-z0-9_-]+$")


def format_path(path: Path) -> str:
    """`realms.default.services.embed.volumes[1]`; keys that are not plain are quoted."""
    out: list[str] = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _PLAIN_KEY.match(part):
            out.append(f".{part}" if out else part)
        else:
            out.append(f'["{part}"]')
    return "".join(out)


@dataclass(frozen=True)
class Diagnostic:
    """Where a problem is (file, 1-based line and column, key path) and what it is.

    `line` and `column` are None when the problem is not at one place in the file (the
    file is missing); `file` is None too when the problem is not in a file at all (a
    selector typed on the command line, whose text is then the `path`). `suggestion` is
    the name the user probably meant, printed as "did you mean ...?".
    """

    file: str | None
    line: int | None
    column: int | None
    path: str
    message: str
    suggestion: str | None = None

    def render(self) -> str:
        """`FILE:LINE:COLUMN: key.path: message; did you mean 'x'?`"""
        where = self.file or ""
        if self.file is not None and self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        text = ": ".join(part for part in (where, self.path, self.message) if part)
        if self.suggestion is not None:
            text += f"; did you mean '{self.suggestion}'?"
        return text

    def to_json(self) -> dict[str, str | int | None]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
            "suggestion": self.suggestion,
        }


def sort_diagnostics(diagnostics: Sequence[Diagnostic]) -> list[Diagnostic]:
    """In file order, without repeats (one mistake can surface through several checks)."""
    unique = dict.fromkeys(diagnostics)
    return sorted(
        unique, key=lambda d: (d.file or "", d.line or 0, d.column or 0, d.path, d.message)
    )
