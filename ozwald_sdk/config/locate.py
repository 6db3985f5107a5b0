"""Where the config file is: --config, else $OZWALD_CONFIG, else ./ozwald.yml."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

CONFIG_ENV: Final = "OZWALD_CONFIG"
DEFAULT_CONFIG: Final = Path("ozwald.yml")


def config_path(explicit: Path | str | None, environ: Mapping[str, str] | None = None) -> Path:
    """The config file to read: `explicit` if given, else $OZWALD_CONFIG, else ./ozwald.yml."""
    if explicit:
        return Path(explicit)
    from_env = (os.environ if environ is None else environ).get(CONFIG_ENV)
    return Path(from_env) if from_env else DEFAULT_CONFIG
