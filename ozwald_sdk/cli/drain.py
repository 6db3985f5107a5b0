"""`ozwald drain HOST [--deadline DURATION] [--wait]`: empty a host for maintenance.

The host is cordoned and its instances move elsewhere, no deployment losing more than its
max_parallel at once; at the deadline what is left moves at once. `--wait` follows the
drain until it ends (docs/operations.md, "Cordon and drain").
"""

from __future__ import annotations

import argparse
import datetime
import time

from ozwald.orchestrator.v1 import fleet_state_pb2

from ozwald_sdk.cli.command import Command, Invocation
from ozwald_sdk.cli.fleet_options import fleet_client, iso
from ozwald_sdk.cli.service_args import dumps
from ozwald_sdk.config.units import DURATION_FORMS, parse_duration
from ozwald_sdk.errors import ExitCode
from ozwald_sdk.orchestrator_client import FleetClient

FS = fleet_state_pb2
DEFAULT_DEADLINE = "10m"
# How often --wait asks where the drain stands.
POLL_S = 1.0
# --wait gives up this long after the deadline: the orchestrator ends every drain at its
# deadline, so a drain still running then means the orchestrator is not progressing it.
WAIT_MARGIN_S = 60.0


def run(invocation: Invocation) -> int:
    args = invocation.args
    with fleet_client(invocation) as client:
        host = client.drain_host(args.host, args.deadline)
        if not invocation.json:
            print(_started(host))
        if args.wait:
            host = _follow(client, host, quiet=invocation.json)
    if invocation.json:
        print(dumps(host))
    elif args.wait:
        print(_ended(host))
    return ExitCode.OK


def _started(host: FS.Host) -> str:
    drain = host.drain
    return (
        f"Draining {host.id}: {drain.remaining} instance(s) still on it; deadline "
        f"{iso(drain.deadline)}. The host is cordoned: it takes no new instances until "
        f"`ozwald uncordon {host.id}`."
    )


def _follow(client: FleetClient, host: FS.Host, *, quiet: bool) -> FS.Host:
    """Poll the host until its drain ends; print each change of what is left."""
    deadline = host.drain.deadline.ToDatetime(datetime.UTC)
    give_up = deadline + datetime.timedelta(seconds=WAIT_MARGIN_S)
    remaining = host.drain.remaining
    while host.drain.state == FS.DRAIN_STATE_RUNNING:
        if datetime.datetime.now(datetime.UTC) > give_up:
            break
        time.sleep(POLL_S)
        host = next((h for h in client.list_hosts() if h.id == host.id), host)
        if not quiet and host.drain.remaining != remaining:
            remaining = host.drain.remaining
            print(f"{host.id}: {remaining} instance(s) left")
    return host


def _ended(host: FS.Host) -> str:
    drain = host.drain
    if drain.state == FS.DRAIN_STATE_COMPLETE:
        return f"{host.id} is drained: nothing runs there; it stays cordoned."
    if drain.state == FS.DRAIN_STATE_DEADLINE_PASSED:
        return (
            f"{host.id}: the deadline passed; what was left there was stopped and is placed "
            f"elsewhere (`ozwald instances` shows where, `ozwald explain` why one waits)."
        )
    if drain.state == FS.DRAIN_STATE_CANCELLED:
        return f"{host.id}: the drain was cancelled (uncordoned); what had not moved stays."
    return (
        f"{host.id}: the drain is still running {WAIT_MARGIN_S:g} s past its deadline; "
        "check the orchestrator (`ozwald events`)."
    )


def _deadline(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: {DURATION_FORMS}") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("the deadline must be longer than 0")
    return seconds


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("host", metavar="HOST", help="the host's id, as `ozwald hosts` shows it")
    parser.add_argument(
        "--deadline",
        type=_deadline,
        default=_deadline(DEFAULT_DEADLINE),
        metavar="DURATION",
        help="after this long what is left moves at once, regardless of max_parallel "
        f"(90s, 10m, 1h; default {DEFAULT_DEADLINE})",
    )
    parser.add_argument(
        "--wait",
        action="store_true",
        help="follow the drain until it is complete, its deadline passed or it is cancelled",
    )


COMMAND = Command(
    name="drain",
    help="cordon a host and move its instances elsewhere within each deployment's "
    "max_parallel; what is left at the deadline moves at once (exit 21 if there is no "
    "such host)",
    run=run,
    arguments=arguments,
)
