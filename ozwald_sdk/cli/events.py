"""`ozwald events [-f] [--after N]`: the fleet's event log, and with -f what happens next.

With --json, one JSON object per line (JSON Lines), so a follower can parse each event
as it arrives.
"""

from __future__ import annotations

import argparse
import json

from ozwald_sdk.cli.command import Command, Invocation
from ozwald_sdk.cli.fleet_options import fleet_client
from ozwald_sdk.cli.render_events import event_line
from ozwald_sdk.cli.service_args import message_dict
from ozwald_sdk.errors import ExitCode


def run(invocation: Invocation) -> int:
    args = invocation.args
    with fleet_client(invocation) as client:
        for event in client.watch_events(after_sequence=args.after, follow=args.follow):
            if invocation.json:
                print(json.dumps(message_dict(event)), flush=True)
            else:
                print(event_line(event), flush=True)
    return ExitCode.OK


def _sequence(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not an event sequence number (0 or more)")
    return int(text)


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="after the stored events, keep printing new ones until Ctrl-C (a broken "
        "connection is resumed from the last event seen)",
    )
    parser.add_argument(
        "--after",
        metavar="N",
        type=_sequence,
        default=0,
        help="only events after sequence N (`ozwald apply` prints the N to follow it from)",
    )


COMMAND = Command(
    name="events",
    help="print the fleet's events in order (deployments applied, instances placed and "
    "moved, hosts joining, going down, coming back); -f follows new ones",
    run=run,
    arguments=arguments,
)
