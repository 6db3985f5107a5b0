"""Secrets from the text of an env file, parsed like `docker run --env-file`.

KEY=VALUE lines, the value verbatim (no quotes removed, no interpolation), blank lines
and '#' comments skipped, a UTF-8 BOM and CRLF line ends tolerated. Unlike an env file
for a container, a bare `KEY` line is an error: there is no environment to take it from.
Errors name the source and the line number, never the line: it may hold a value.
"""

from __future__ import annotations

from ozwald_agent.secrets.errors import InvalidSecretError
from ozwald_agent.secrets.names import check_secret_name

_BOM = "\ufeff"


def parse_secrets(content: bytes, source: str) -> dict[str, bytes]:
    try:
        text = content.decode()
    except UnicodeDecodeError as e:
        raise InvalidSecretError(
            f"{source}: not UTF-8 text (byte {e.start})",
            "import text env files; store binary values with `ozwald secrets set --from-file`",
            field="env_file",
        ) from e
    values: dict[str, bytes] = {}
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.removesuffix("\r")
        if number == 1:
            line = line.removeprefix(_BOM)
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        key, has_value, value = line.partition("=")
        where = f"{source}, line {number}"
        if not has_value:
            raise InvalidSecretError(
                f"{where}: no '=' (a bare name sets nothing here)",
                "write NAME=VALUE",
                field="env_file",
            )
        try:
            check_secret_name(key)
        except InvalidSecretError as e:
            raise InvalidSecretError(f"{where}: {e.message}", e.remedy, field="env_file") from e
        values[key] = value.encode()
    if not values:
        raise InvalidSecretError(
            f"{source}: sets no secret", "write NAME=VALUE lines", field="env_file"
        )
    return values
