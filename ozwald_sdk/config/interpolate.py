"""`${NAME}` in commands, replaced by the service's own effective environment.

Lists replace each other when layers merge, so a profile cannot change one flag of a
command it does not repeat; it can change a variable the command refers to. Only the
braced form is replaced, and only from the service's `environment` (never from the
environment of whoever runs `ozwald`); `$$` is a literal `$`; any other `$` is kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final

_TOKEN: Final = re.compile(r"\$\$|\$\{([^}]*)\}")


class UnknownVariableError(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def interpolate(words: Sequence[str], environment: Mapping[str, str]) -> tuple[str, ...]:
    """`words` with each `${NAME}` replaced; raises UnknownVariableError for a missing one."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        if name not in environment:
            raise UnknownVariableError(name)
        return environment[name]

    return tuple(_TOKEN.sub(replace, word) for word in words)
