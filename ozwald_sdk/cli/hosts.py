"""`ozwald hosts`: every host that joined the fleet, its state, hardware and labels."""

from __future__ import annotations

import datetime

from ozwald.orchestrator.v1.fleet_service_pb2 import ListHostsResponse

from ozwald_sdk.cli.command import Command, Invocation
from ozwald_sdk.cli.fleet_options import fleet_client
from ozwald_sdk.cli.render_fleet_state import render_hosts
from ozwald_sdk.cli.service_args import dumps
from ozwald_sdk.errors import ExitCode


def run(invocation: Invocation) -> int:
    with fleet_client(invocation) as client:
        hosts = client.list_hosts()
    if invocation.json:
        print(dumps(ListHostsResponse(hosts=hosts)))
    else:
        print(render_hosts(hosts, datetime.datetime.now(datetime.UTC)), end="")
    return ExitCode.OK


COMMAND = Command(
    name="hosts",
    help="list the fleet's hosts: READY, DOWN (no heartbeat) or LOST (instances moved away), "
    "and cordoned (no new instances), since when, last heard of, GPUs, memory, assignment "
    "version, labels",
    run=run,
)
