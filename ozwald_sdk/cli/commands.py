"""Every `ozwald` subcommand, in the order `ozwald --help` lists them.

To add one: write `ozwald_sdk/cli/NAME.py` exposing `COMMAND = Command(...)`, and list
it here.
"""

from __future__ import annotations

from ozwald_sdk.cli import (
    apply,
    audit,
    ca,
    config_commands,
    cordon,
    deployments,
    down,
    drain,
    drift,
    events,
    explain,
    footprints,
    host,
    hosts,
    instances,
    list_active,
    list_configured,
    logs,
    profile,
    rollout,
    scale,
    secrets,
    status,
    update_services,
    volumes,
    webhooks,
)
from ozwald_sdk.cli.command import Command

COMMANDS: tuple[Command, ...] = (
    host.COMMAND,
    config_commands.COMMAND,
    list_configured.COMMAND,
    update_services.COMMAND,
    status.COMMAND,
    list_active.COMMAND,
    logs.COMMAND,
    down.COMMAND,
    profile.COMMAND,
    footprints.COMMAND,
    secrets.COMMAND,
    volumes.COMMAND,
    webhooks.COMMAND,
    ca.COMMAND,
    apply.COMMAND,
    hosts.COMMAND,
    cordon.COMMAND,
    cordon.UNCORDON_COMMAND,
    drain.COMMAND,
    deployments.COMMAND,
    scale.COMMAND,
    rollout.COMMAND,
    instances.COMMAND,
    explain.COMMAND,
    drift.COMMAND,
    events.COMMAND,
    audit.COMMAND,
)
