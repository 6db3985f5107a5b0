"""`ozwald cordon HOST` and `ozwald uncordon HOST`: stop and allow new placements on a host.

A cordoned host keeps running what it runs; the scheduler places nothing new there.
Uncordon also cancels a drain of the host.
"""

from __future__ import annotations

import argparse

from ozwald.orchestrator.v1 import fleet_state_pb2

from ozwald_sdk.cli.command import Command, Invocation
from ozwald_sdk.cli.fleet_options import fleet_client
from ozwald_sdk.cli.service_args import dumps
from ozwald_sdk.errors import ExitCode


def run_cordon(invocation: Invocation) -> int:
    with fleet_client(invocation) as client:
        host = client.cordon_host(invocation.args.host)
    if invocation.json:
        print(dumps(host))
    else:
        running = _instances_note(host)
        print(
            f"{host.id} is cordoned: the scheduler places no new instances there; {running}. "
            f"`ozwald uncordon {host.id}` undoes it."
        )
    return ExitCode.OK


def run_uncordon(invocation: Invocation) -> int:
    with fleet_client(invocation) as client:
        host = client.uncordon_host(invocation.args.host)
    if invocation.json:
        print(dumps(host))
    else:
        drain = ""
        if host.drain.state == fleet_state_pb2.DRAIN_STATE_CANCELLED:
            drain = "; its drain is cancelled"
        print(f"{host.id} is uncordoned: it takes new instances again{drain}.")
    return ExitCode.OK


def _instances_note(host: fleet_state_pb2.Host) -> str:
    """What happens to the host's instances, in words."""
    if host.drain.state == fleet_state_pb2.DRAIN_STATE_RUNNING:
        return "its drain moves its instances elsewhere"
    return "what runs there stays (`ozwald drain` moves it elsewhere)"


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("host", metavar="HOST", help="the host's id, as `ozwald hosts` shows it")


_NOT_FOUND = f"exit {ExitCode.HOST_NOT_FOUND.value} if there is no such host"

COMMAND = Command(
    name="cordon",
    help="stop placing new instances on a host; what runs there stays (" + _NOT_FOUND + ")",
    run=run_cordon,
    arguments=arguments,
)

UNCORDON_COMMAND = Command(
    name="uncordon",
    help="let a cordoned host take new instances again, cancelling its drain if one runs ("
    + _NOT_FOUND
    + ")",
    run=run_uncordon,
    arguments=arguments,
)
