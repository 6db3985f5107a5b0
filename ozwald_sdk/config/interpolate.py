"""`${NAME}` in commands, replaced by the service's own variables and Ozwald's built-ins.

Lists replace each other when layers merge, so a profile cannot change one flag of a
command it does not repeat; it can change a variable the command refers to. Only the
braced form is replaced, and only from the service's `environment` and the built-ins
below (never from the environment of whoever runs `ozwald`); `$$` is a literal `$`; any
other `$` is kept.

Built-ins are facts of the effective spec itself, so that a value is said once: a profile
that asks for two GPUs runs `--tensor-parallel-size=${OZWALD_GPU_COUNT}` without
repeating the 2. They are not set in the container's environment, and the service's
`environment` may not set a variable of the same name (one name, one meaning).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final

_TOKEN: Final = re.compile(r"\$\$|\$\{([^}]*)\}")

BUILTIN_PREFIX: Final = "OZWALD_"

BUILTIN_VARIABLES: Final[Mapping[str, str]] = {
    "OZWALD_GPU_COUNT": "the effective resources.gpus.count (0 without GPUs)",
    "OZWALD_REALM": "the realm's name",
    "OZWALD_SERVICE": "the service's name",
    "OZWALD_VARIETY": "the variety (nvidia, amdgpu, cpu), empty for a service without varieties",
    "OZWALD_PROFILE": "the profile's name, empty without one",
}
"""Every built-in variable and what it holds; docs/configuration.md lists the same."""


class UnknownVariableError(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def builtin_variables(
    *, realm: str, service: str, variety: str | None, profile: str | None, gpu_count: int
) -> dict[str, str]:
    """The built-ins' values for one effective spec."""
    values = {
        "OZWALD_GPU_COUNT": str(gpu_count),
        "OZWALD_REALM": realm,
        "OZWALD_SERVICE": service,
        "OZWALD_VARIETY": variety or "",
        "OZWALD_PROFILE": profile or "",
    }
    assert values.keys() == BUILTIN_VARIABLES.keys()
    return values


def interpolate(words: Sequence[str], variables: Mapping[str, str]) -> tuple[str, ...]:
    """`words` with each `${NAME}` replaced; raises UnknownVariableError for a missing one."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        if name not in variables:
            raise UnknownVariableError(name)
        return variables[name]

    return tuple(_TOKEN.sub(replace, word) for word in words)
