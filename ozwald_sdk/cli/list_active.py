"""`ozwald list_active_services`: the instances that run now, and where they answer."""

from __future__ import annotations

import argparse

from ozwald.agent.v1.agent_service_pb2 import ListServicesResponse

from ozwald_sdk.cli.command import Command, Invocation
from ozwald_sdk.cli.render_services import RUNNING, render_active
from ozwald_sdk.cli.service_args import dumps
from ozwald_sdk.errors import ExitCode


def run(invocation: Invocation) -> int:
    with invocation.agent_client() as client:
        response = client.list_services(realm=invocation.args.realm)
    if invocation.json:
        running = [s for s in response.instances if s.state in RUNNING]
        print(
            dumps(ListServicesResponse(instances=running, event_sequence=response.event_sequence))
        )
    else:
        print(render_active(response.instances), end="")
    return ExitCode.OK


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--realm", metavar="REALM", default="", help="only this realm")


COMMAND = Command(
    name="list_active_services",
    help="list the services that run now (starting, ready or unhealthy) with their endpoints",
    run=run,
    arguments=arguments,
)
