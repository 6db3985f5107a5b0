"""`ozwald webhooks deliveries`: the webhook delivery attempts the agent recorded."""

from __future__ import annotations

import argparse

from ozwald.agent.v1.agent_service_pb2 import ListWebhookDeliveriesResponse

from ozwald_sdk.cli.command import Command, Invocation
from ozwald_sdk.cli.render_webhooks import render_deliveries
from ozwald_sdk.cli.service_args import dumps
from ozwald_sdk.errors import ExitCode

DEFAULT_LIMIT = 50


def run(invocation: Invocation) -> int:
    args = invocation.args
    with invocation.agent_client() as client:
        deliveries = client.list_webhook_deliveries(
            realm=args.realm, service=args.service, limit=args.limit
        )
    if invocation.json:
        print(dumps(ListWebhookDeliveriesResponse(deliveries=deliveries)))
    else:
        print(render_deliveries(deliveries), end="")
    return ExitCode.OK


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("expected a whole number of at least 1")
    return value


def arguments(parser: argparse.ArgumentParser) -> None:
    # `deliveries` takes the connection and output options `main` gave `parser` (--agent,
    # --timeout, --json, TLS), so that they work after it too, as after every other command.
    shared = argparse.ArgumentParser(add_help=False, parents=[parser])
    what = parser.add_subparsers(dest="webhooks_command", metavar="WHAT", required=True)
    deliveries = what.add_parser(
        "deliveries",
        parents=[shared],
        add_help=False,
        help="recorded delivery attempts, newest first",
        description="recorded delivery attempts, newest first (the agent keeps the last 10,000)",
    )
    deliveries.add_argument("--realm", metavar="REALM", default="", help="only this realm")
    deliveries.add_argument("--service", metavar="NAME", default="", help="only this service")
    deliveries.add_argument(
        "--limit",
        metavar="N",
        type=_positive,
        default=DEFAULT_LIMIT,
        help=f"at most N attempts (default {DEFAULT_LIMIT})",
    )


COMMAND = Command(
    name="webhooks",
    help="webhook delivery log: `ozwald webhooks deliveries [--realm] [--service] [--limit]`",
    run=run,
    arguments=arguments,
)
