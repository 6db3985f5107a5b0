"""`ozwald deployments [NAME]`: the stored deployments, or one with its instances."""

from __future__ import annotations

import argparse
import datetime

from ozwald_sdk.cli.command import Command, Invocation
from ozwald_sdk.cli.fleet_options import fleet_client
from ozwald_sdk.cli.render_fleet_state import render_deployment, render_deployments
from ozwald_sdk.cli.service_args import dumps
from ozwald_sdk.errors import ExitCode


def run(invocation: Invocation) -> int:
    name = invocation.args.name
    now = datetime.datetime.now(datetime.UTC)
    with fleet_client(invocation) as client:
        if name:
            one = client.get_deployment(name)
            if invocation.json:
                print(dumps(one))
            else:
                print(render_deployment(one.deployment, one.instances, now), end="")
            return ExitCode.OK
        every = client.list_deployments()
    if invocation.json:
        print(dumps(every))
    else:
        print(render_deployments(every.deployments, every.instances, now), end="")
    return ExitCode.OK


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "name", metavar="NAME", nargs="?", default="", help="show this deployment in full"
    )


COMMAND = Command(
    name="deployments",
    help="list the deployments the orchestrator stores (instances running out of replicas, "
    f"pending), or show one with its instances; exit {ExitCode.DEPLOYMENT_NOT_FOUND.value} "
    "if there is none by that name",
    run=run,
    arguments=arguments,
)
