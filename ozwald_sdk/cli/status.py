"""`ozwald status`: every service instance on the host, where it is in its life and why."""

from __future__ import annotations

import argparse
import datetime

from ozwald_sdk.cli.command import Command, Invocation
from ozwald_sdk.cli.render_services import render_status_table
from ozwald_sdk.cli.service_args import dumps
from ozwald_sdk.errors import ExitCode


def run(invocation: Invocation) -> int:
    with invocation.agent_client() as client:
        response = client.list_services(realm=invocation.args.realm)
    if invocation.json:
        print(dumps(response))
    else:
        now = datetime.datetime.now(datetime.UTC)
        print(render_status_table(response.instances, now), end="")
    return ExitCode.OK


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--realm", metavar="REALM", default="", help="only this realm")


COMMAND = Command(
    name="status",
    help="show every service instance on the host: variety/profile, state and since when, "
    "restarts, endpoints (port alone: on 127.0.0.1), reason; failed ones with their last "
    "log lines",
    run=run,
    arguments=arguments,
)
