"""`ozwald host`: what this host offers (CPU, memory, disk, container engine, GPUs)."""

from __future__ import annotations

from ozwald_sdk.cli.command import Command, Invocation
from ozwald_sdk.cli.render_host import host_profile_json, render_host_profile
from ozwald_sdk.errors import ExitCode


def run(invocation: Invocation) -> int:
    with invocation.agent_client() as client:
        profile = client.get_host_profile()
    if invocation.json:
        print(host_profile_json(profile))
    else:
        print(render_host_profile(profile), end="")
    return ExitCode.OK


COMMAND = Command(
    name="host",
    aliases=("show_host_resources",),
    help="show what the agent found on its host: CPU, memory, disk, container engine, GPUs",
    run=run,
)
