"""Env files, read exactly as `docker run --env-file` reads them.

The rules (docker/cli `pkg/kvfile`):

- One variable per line: `KEY=VALUE`. The value is everything after the first `=`, kept
  verbatim: no quote removal (`A="x"` gives the three characters `"x"`), no trimming, no
  `$VAR` interpolation, no inline comments. (Compose's `env_file` differs: it strips quotes
  and interpolates. Ozwald follows `docker run`, the simpler contract.)
- Leading whitespace of a line is ignored; lines that are then empty or start with `#`
  are skipped. A UTF-8 byte order mark on the first line is dropped.
- A key may not contain spaces or tabs and may not be empty; a file that is not UTF-8 is
  refused. Errors name the file and the line.
- A bare `KEY` (no `=`) takes its value from "the environment". For `docker run` that is
  the shell of the person typing; for the agent it would be the daemon's own environment,
  which nobody configures per service and which may hold the agent's secrets. So the
  caller passes that environment explicitly (`passthrough`); the agent passes none, and a
  bare key then sets nothing, exactly as docker does for a variable its shell lacks.

Files are merged in order, later files winning; the spec's `environment` wins over all
(that last step is in `container_spec`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ozwald_agent.runtime.errors import EnvFileError

_BOM = "\ufeff"
_KEY_WHITESPACE = (" ", "\t")


def parse_env_text(
    text: str, source: str, passthrough: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The variables `text` (the content of the file `source`) sets, in file order."""
    variables: dict[str, str] = {}
    for number, raw_line in enumerate(text.split("\n"), start=1):
        line = raw_line.removesuffix("\r")
        if number == 1:
            line = line.removeprefix(_BOM)
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        key, has_value, value = line.partition("=")
        if not key:
            raise EnvFileError(source, f"no variable name on the line {line!r}", line=number)
        if any(c in key for c in _KEY_WHITESPACE):
            raise EnvFileError(
                source,
                f"variable name {key!r} contains whitespace",
                line=number,
                remedy="write KEY=VALUE with no space before the '='",
            )
        if has_value:
            variables[key] = value
        elif passthrough is not None and key in passthrough:
            variables[key] = passthrough[key]
    return variables


def read_env_files(
    paths: Sequence[str],
    passthrough: Mapping[str, str] | None = None,
    read_bytes: Callable[[str], bytes] = lambda path: Path(path).read_bytes(),
) -> dict[str, str]:
    """The variables the files set together, later files winning."""
    merged: dict[str, str] = {}
    for path in paths:
        if not Path(path).is_absolute():
            raise EnvFileError(
                path,
                "the path is not absolute",
                remedy="env files are read by the agent on its host: give absolute paths",
            )
        try:
            data = read_bytes(path)
        except FileNotFoundError as e:
            raise EnvFileError(
                path, "no such file on the agent's host", remedy="create it or fix the path"
            ) from e
        except PermissionError as e:
            raise EnvFileError(
                path,
                "the agent may not read it",
                remedy="make it readable by the agent's user (and by nobody else if it holds "
                "secrets)",
            ) from e
        except OSError as e:
            raise EnvFileError(path, f"cannot be read: {e.strerror or e}") from e
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data[: e.start].count(b"\n") + 1
            raise EnvFileError(path, "is not valid UTF-8", line=line) from e
        merged.update(parse_env_text(text, path, passthrough))
    return merged
