"""Every `ozwald` subcommand, in the order `ozwald --help` lists them.

To add one: write `ozwald_sdk/cli/NAME.py` exposing `COMMAND = Command(...)`, and list
it here.
"""

from __future__ import annotations

from ozwald_sdk.cli import host
from ozwald_sdk.cli.command import Command

COMMANDS: tuple[Command, ...] = (host.COMMAND,)
