"""`ozwald apply -f FILE [--plan]`: make the fleet section's deployments the complete desired
set of the file's realms on the orchestrator; `--plan` shows what that would do."""

from __future__ import annotations

import argparse
from pathlib import Path

from ozwald_sdk.cli.command import Command, Invocation
from ozwald_sdk.cli.config_options import load, reports_invalid_config_as_json
from ozwald_sdk.cli.fleet_options import fleet_client
from ozwald_sdk.cli.render_fleet_plan import render_fleet_plan
from ozwald_sdk.cli.service_args import dumps
from ozwald_sdk.config import CONFIG_ENV, DEFAULT_CONFIG
from ozwald_sdk.config.deployments import fleet_realms, resolve_deployments
from ozwald_sdk.errors import ExitCode


@reports_invalid_config_as_json
def run(invocation: Invocation) -> int:
    config = load(invocation)
    deployments = resolve_deployments(config)
    realms = fleet_realms(config)
    with fleet_client(invocation) as client:
        if invocation.args.plan:
            plan = client.plan_deployments(deployments, realms=realms)
            if invocation.json:
                print(dumps(plan))
            else:
                print(render_fleet_plan(plan, applied=False), end="")
            return ExitCode.OK
        response = client.apply_deployments(deployments, realms=realms)
    if invocation.json:
        print(dumps(response))
        return ExitCode.OK
    print(render_fleet_plan(response.plan, applied=True), end="")
    print("\nThe orchestrator converges the fleet now; follow it with")
    print(f"`ozwald events -f --after {response.event_sequence}`, or see `ozwald deployments`.")
    return ExitCode.OK


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f",
        "--file",
        dest="config",
        metavar="FILE",
        type=Path,
        default=None,
        help=f"the config file with the fleet section; default ${CONFIG_ENV}, else "
        f"./{DEFAULT_CONFIG}",
    )
    parser.add_argument(
        "--plan",
        action="store_true",
        help="only show what would change and where instances would go; store nothing",
    )


COMMAND = Command(
    name="apply",
    help="make the fleet section's deployments the complete set of deployments of the "
    "file's realms (others of those realms are removed); the orchestrator places and "
    "converges them",
    run=run,
    arguments=arguments,
)
