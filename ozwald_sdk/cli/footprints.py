"""`ozwald footprints [--forget SPEC]`: the footprints the agent stores, or forget some."""

from __future__ import annotations

import argparse
import datetime

from ozwald.agent.v1.agent_service_pb2 import ForgetFootprintsResponse, ListFootprintsResponse

from ozwald_sdk.cli.command import Command, Invocation
from ozwald_sdk.cli.render_footprints import footprint_selector, render_footprints
from ozwald_sdk.cli.service_args import dumps
from ozwald_sdk.config import Selector
from ozwald_sdk.errors import ExitCode


def run(invocation: Invocation) -> int:
    args = invocation.args
    with invocation.agent_client() as client:
        if args.forget is not None:
            chosen = Selector.parse(args.forget)
            forgotten = client.forget_footprints(
                chosen.service,
                realm=chosen.realm or "",
                variety=chosen.variety,
                profile=chosen.profile,
            )
            if invocation.json:
                print(dumps(ForgetFootprintsResponse(forgotten=forgotten)))
            elif forgotten:
                print(f"Forgot {len(forgotten)} footprint{'' if len(forgotten) == 1 else 's'}:")
                for footprint in forgotten:
                    print(f"  {footprint_selector(footprint)}")
                print("Admission counts the declared requirements for them again.")
            else:
                print(f"No footprint stored matches {args.forget}; nothing forgotten.")
            return ExitCode.OK
        footprints = client.list_footprints(realm=args.realm)
    if invocation.json:
        print(dumps(ListFootprintsResponse(footprints=footprints)))
    else:
        print(render_footprints(footprints, datetime.datetime.now(datetime.UTC)), end="")
    return ExitCode.OK


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--realm", metavar="REALM", default="", help="only this realm")
    parser.add_argument(
        "--forget",
        metavar="SPEC",
        default=None,
        help="delete footprints instead: [realm:]service[variety][profile]; a part left out "
        "means all of it (every realm, variety or profile)",
    )


COMMAND = Command(
    name="footprints",
    help="list the footprints measured on the agent's host (`ozwald profile` makes them), "
    "or forget some with --forget",
    run=run,
    arguments=arguments,
)
