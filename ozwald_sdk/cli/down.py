"""`ozwald down [SERVICE...]`: stop services (every dynamic one when none is named)."""

from __future__ import annotations

import argparse
import sys

from ozwald.agent.v1 import service_status_pb2

from ozwald_sdk.cli.command import Command, Invocation
from ozwald_sdk.cli.render_services import progress_line
from ozwald_sdk.cli.service_args import dumps, seconds, service_ref
from ozwald_sdk.errors import ExitCode
from ozwald_sdk.waiting import label, wait_until_stopped

DEFAULT_TIMEOUT_STOPPED = 300.0


def run(invocation: Invocation) -> int:
    args = invocation.args
    refs = [service_ref(text) for text in args.services]
    progress = sys.stderr if invocation.json else sys.stdout
    with invocation.agent_client() as client:
        response = client.stop_services(refs)
        keys = [(ref.realm, ref.name) for ref in response.stopping]
        if not invocation.json:
            if keys:
                print(f"Stopping {', '.join(label(key) for key in keys)}")
            else:
                print("Nothing to stop: no dynamic service is desired on this host.")
        if args.wait and keys:
            label_width = max(len(label(key)) for key in keys)

            def on_event(status: service_status_pb2.InstanceStatus) -> None:
                print(progress_line(status, label_width), file=progress, flush=True)

            wait_until_stopped(
                client,
                keys,
                response.event_sequence,
                args.timeout_stopped,
                on_event=on_event,
            )
            if not invocation.json:
                print("Stopped.")
    if invocation.json:
        print(dumps(response))
    return ExitCode.OK


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "services",
        metavar="SERVICE",
        nargs="*",
        help="[realm:]name of a service to stop; none: every dynamic service",
    )
    parser.add_argument(
        "--wait",
        action="store_true",
        help="follow the services until each has stopped (exit "
        f"{ExitCode.DEADLINE_EXCEEDED.value} when --timeout-stopped passes first)",
    )
    parser.add_argument(
        "--timeout-stopped",
        metavar="SECONDS",
        type=seconds,
        default=DEFAULT_TIMEOUT_STOPPED,
        help=f"how long --wait waits (default {DEFAULT_TIMEOUT_STOPPED:g})",
    )


COMMAND = Command(
    name="down",
    help="stop the named services, or every dynamic service when none is named, in reverse "
    "dependency order; they leave the desired state",
    run=run,
    arguments=arguments,
)
