"""`ozwald instances [--deployment D] [--host H]`: where each instance is and why."""

from __future__ import annotations

import argparse
import datetime

from ozwald.orchestrator.v1.fleet_service_pb2 import ListInstancesResponse

from ozwald_sdk.cli.command import Command, Invocation
from ozwald_sdk.cli.fleet_options import fleet_client
from ozwald_sdk.cli.render_fleet_state import render_instances
from ozwald_sdk.cli.service_args import dumps
from ozwald_sdk.errors import ExitCode


def run(invocation: Invocation) -> int:
    args = invocation.args
    with fleet_client(invocation) as client:
        instances = client.list_instances(deployment=args.deployment, host_id=args.host)
    if invocation.json:
        print(dumps(ListInstancesResponse(instances=instances)))
    else:
        print(render_instances(instances, datetime.datetime.now(datetime.UTC)), end="")
    return ExitCode.OK


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--deployment", metavar="NAME", default="", help="only this deployment's")
    parser.add_argument("--host", metavar="HOST_ID", default="", help="only those on this host")


COMMAND = Command(
    name="instances",
    help="list fleet instances: host, variety, state and since when, how often they moved, "
    "and why (e.g. why one is PENDING)",
    run=run,
    arguments=arguments,
)
