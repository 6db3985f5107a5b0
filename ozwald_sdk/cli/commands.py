"""Every `ozwald` subcommand, in the order `ozwald --help` lists them.

To add one: write `ozwald_sdk/cli/NAME.py` exposing `COMMAND = Command(...)`, and list
it here.
"""

from __future__ import annotations

from ozwald_sdk.cli import config_commands, host, list_configured
from ozwald_sdk.cli.command import Command

COMMANDS: tuple[Command, ...] = (host.COMMAND, config_commands.COMMAND, list_configured.COMMAND)
