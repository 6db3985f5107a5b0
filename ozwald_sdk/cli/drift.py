"""`ozwald drift`: where what the hosts run differs from what they are assigned."""

from __future__ import annotations

from ozwald.orchestrator.v1.fleet_service_pb2 import GetDriftResponse

from ozwald_sdk.cli.command import Command, Invocation
from ozwald_sdk.cli.fleet_options import fleet_client
from ozwald_sdk.cli.render_drift import render_drift
from ozwald_sdk.cli.service_args import dumps
from ozwald_sdk.errors import ExitCode


def run(invocation: Invocation) -> int:
    with fleet_client(invocation) as client:
        items = client.get_drift()
    if invocation.json:
        print(dumps(GetDriftResponse(items=items)))
    else:
        print(render_drift(items), end="")
    return ExitCode.OK


COMMAND = Command(
    name="drift",
    help="list what runs that should not, what should run and does not, specs that differ "
    "and hosts behind their assignment; the orchestrator converges them on its own",
    run=run,
)
