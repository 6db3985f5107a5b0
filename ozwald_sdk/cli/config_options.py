"""What the commands that read ozwald.yml share: --config, loading, invalid-config JSON."""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Callable
from pathlib import Path

from ozwald_sdk.cli.command import Invocation
from ozwald_sdk.config import CONFIG_ENV, DEFAULT_CONFIG, Config, config_path, load_config
from ozwald_sdk.errors import ConfigInvalidError


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="PATH",
        type=Path,
        default=None,
        help=f"the config file; default ${CONFIG_ENV}, else ./{DEFAULT_CONFIG}",
    )


def chosen_path(invocation: Invocation) -> Path:
    return config_path(invocation.args.config)


def load(invocation: Invocation) -> Config:
    """The config named by --config / $OZWALD_CONFIG / ./ozwald.yml, checked."""
    return load_config(chosen_path(invocation))


def invalid_json(error: ConfigInvalidError, file: Path) -> str:
    return json.dumps(
        {
            "valid": False,
            "file": str(file),
            "summary": error.summary,
            "diagnostics": [d.to_json() for d in error.diagnostics],
        },
        indent=2,
    )


def reports_invalid_config_as_json(
    run: Callable[[Invocation], int],
) -> Callable[[Invocation], int]:
    """With --json, an invalid config is printed as JSON on stdout (still exit code 10);
    without, the error goes to `main`, which prints it for people."""

    @functools.wraps(run)
    def wrapper(invocation: Invocation) -> int:
        try:
            return run(invocation)
        except ConfigInvalidError as e:
            if not invocation.json:
                raise
            print(invalid_json(e, chosen_path(invocation)))
            return e.exit_code

    return wrapper
