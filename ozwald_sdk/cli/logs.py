"""`ozwald logs SERVICE [-f]`: a service's container output, as the agent streams it."""

from __future__ import annotations

import argparse
import sys

from ozwald_sdk.cli.command import Command, Invocation
from ozwald_sdk.cli.service_args import service_ref
from ozwald_sdk.errors import ExitCode


def run(invocation: Invocation) -> int:
    args = invocation.args
    realm, name = service_ref(args.service)
    out = sys.stdout.buffer
    with invocation.agent_client() as client:
        # For a failed service (its container removed) the agent sends the lines it kept.
        # A reader that goes away (`ozwald logs x | head`) ends the stream: cli/main.py.
        for chunk in client.service_logs(realm, name, tail_lines=args.tail, follow=args.follow):
            out.write(chunk)
            out.flush()
    return ExitCode.OK


def _lines(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of lines") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of lines (0 or more)")
    return value


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("service", metavar="SERVICE", help="[realm:]name, e.g. echo")
    parser.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="keep printing new output until Ctrl-C or the container is removed",
    )
    parser.add_argument(
        "--tail",
        metavar="N",
        type=_lines,
        default=0,
        help="start with the last N lines (default 0: all of them)",
    )


COMMAND = Command(
    name="logs",
    help="print a service's container output (stdout and stderr as written); -f follows it",
    run=run,
    arguments=arguments,
)
