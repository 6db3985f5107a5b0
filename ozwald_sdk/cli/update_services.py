"""`ozwald update_services SPEC... | --all`: make the named services the host's complete
set of dynamic services; `--plan` shows what that would do, `--wait` follows it through."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping
from typing import Any

from ozwald.agent.v1 import plan_pb2, service_status_pb2
from ozwald.agent.v1.agent_service_pb2 import ApplyServicesResponse

from ozwald_sdk.agent_client import AgentClient
from ozwald_sdk.cli.command import Command, Invocation
from ozwald_sdk.cli.config_options import add_config_option, load, reports_invalid_config_as_json
from ozwald_sdk.cli.render_plan import action_lines, render_plan, stop_note
from ozwald_sdk.cli.render_services import progress_line
from ozwald_sdk.cli.service_args import UsageError, dumps, message_dict, seconds
from ozwald_sdk.cli.text import INDENT
from ozwald_sdk.config.desired_set import parse_selectors, resolve_every_dynamic, resolve_selected
from ozwald_sdk.errors import AdmissionRefusedError, ExitCode
from ozwald_sdk.waiting import (
    ServiceKey,
    ServiceStartFailedError,
    WaitTimedOutError,
    expected_fingerprints,
    label,
    wait_until_ready,
)

DEFAULT_TIMEOUT_READY = 600.0
P = plan_pb2


@reports_invalid_config_as_json
def run(invocation: Invocation) -> int:
    args = invocation.args
    if args.all and args.specs:
        raise UsageError(
            "name the services (SPEC...) or pass --all, not both",
            remedy="--all already means every service of the config that is not persistent",
        )
    if not args.all and not args.specs:
        raise UsageError(
            "no services named: update_services needs the complete set to run (SPEC...) or --all",
            remedy="`ozwald list_configured_services` lists the services; "
            "`ozwald down` stops every dynamic service",
        )
    config = load(invocation)
    selectors = [] if args.all else parse_selectors(args.specs)
    with invocation.agent_client() as client:
        host = client.get_host_profile()
        services = (
            resolve_every_dynamic(config, host)
            if args.all
            else resolve_selected(config, selectors, host)
        )
        specs = [service.to_service_spec() for service in services]
        if args.plan:
            plan = client.plan_services(specs)
            if invocation.json:
                print(dumps(plan))
            else:
                print(render_plan(plan), end="")
            return ExitCode.OK if plan.admitted else ExitCode.ADMISSION_REFUSED
        try:
            response = client.apply_services(specs)
        except AdmissionRefusedError as e:
            _show_refused(invocation, e)
            raise
        if not invocation.json:
            print(_applied(response.plan, waiting=args.wait), end="")
        if not args.wait:
            if invocation.json:
                print(dumps(response))
            return ExitCode.OK
        return _wait(invocation, client, response)


def _show_refused(invocation: Invocation, error: AdmissionRefusedError) -> None:
    """The refused plan, every refusal with its remedy: JSON on stdout for machines, text
    on stderr (before `main` prints the error) for people."""
    if error.plan is None:
        return
    if invocation.json:
        print(dumps(error.plan))
    else:
        print(render_plan(error.plan), end="", file=sys.stderr)


def _applied(plan: P.Plan, *, waiting: bool) -> str:
    """What the apply set in motion: one line per service, and what follows."""
    changes = [a for a in plan.actions if a.kind != P.ACTION_KIND_KEEP]
    host = f"host {plan.hostname}" if plan.hostname else "the host"
    if not changes:
        out = [f"Nothing to change on {host}: every service named runs as desired."]
    else:
        counts = {
            verb: sum(1 for a in plan.actions if a.kind == kind)
            for kind, verb in (
                (P.ACTION_KIND_START, "starting"),
                (P.ACTION_KIND_RESTART, "restarting"),
                (P.ACTION_KIND_STOP, "stopping"),
                (P.ACTION_KIND_KEEP, "unchanged"),
            )
        }
        listed = ", ".join(f"{n} {verb}" for verb, n in counts.items() if n)
        out = [f"Updated {host}: {listed}"]
    width = max((len(f"{a.realm}:{a.name}") for a in plan.actions), default=0)
    for action in plan.actions:
        out.extend(action_lines(action, width))
    note = stop_note(plan)
    if note:
        out.append("")
        out.extend(note)
    if changes and not waiting:
        out.append("")
        out.append("The agent carries it out now; `ozwald status` shows where each service is.")
    return "\n".join(out) + "\n"


def _wait(invocation: Invocation, client: AgentClient, response: ApplyServicesResponse) -> int:
    expected = expected_fingerprints(response.plan)
    progress = sys.stderr if invocation.json else sys.stdout
    if not expected:
        print("Nothing to wait for: no service is desired.", file=progress)
        if invocation.json:
            print(dumps(_document(response, {})))
        return ExitCode.OK
    timeout = invocation.args.timeout_ready
    count = len(expected)
    print(
        f"\nWaiting up to {timeout:g} s for {count} service{'' if count == 1 else 's'} "
        "to be ready:",
        file=progress,
    )
    label_width = max(len(label(key)) for key in expected)
    started = time.monotonic()

    def on_event(status: service_status_pb2.InstanceStatus) -> None:
        print(progress_line(status, label_width), file=progress, flush=True)

    try:
        statuses = wait_until_ready(
            client,
            expected,
            response.event_sequence,
            timeout,
            on_event=on_event,
            generation=response.generation,
        )
    except (ServiceStartFailedError, WaitTimedOutError) as e:
        if invocation.json:
            known = e.statuses if isinstance(e, ServiceStartFailedError) else e.pending
            print(dumps(_document(response, known)))
        raise
    took = time.monotonic() - started
    if invocation.json:
        print(dumps(_document(response, statuses)))
        return ExitCode.OK
    print(f"Ready after {took:.1f} s.")
    for key, status in statuses.items():
        if status.endpoints:
            print(f"{INDENT}{label(key):<{label_width}}  {', '.join(status.endpoints)}")
    return ExitCode.OK


def _document(
    response: ApplyServicesResponse,
    statuses: Mapping[ServiceKey, service_status_pb2.InstanceStatus | None],
) -> dict[str, Any]:
    """The apply's response with the latest status of every service waited for."""
    return {
        **message_dict(response),
        "instances": [message_dict(s) for s in statuses.values() if s is not None],
    }


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "specs",
        metavar="SPEC",
        nargs="*",
        help="[realm:]service[variety][profile], e.g. echo or 'echo[][loud]' (quote the "
        "brackets); the variety, when not named, is chosen for the agent's host. Together "
        "the SPECs are the complete set: any other dynamic service that runs is stopped",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="every service of the config that is not persistent, instead of SPECs",
    )
    add_config_option(parser)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--plan",
        action="store_true",
        help="only show what would happen (start, stop, restart, keep; GPUs, memory; every "
        f"refusal) and change nothing; exit {ExitCode.ADMISSION_REFUSED.value} if refused",
    )
    mode.add_argument(
        "--wait",
        action="store_true",
        help="follow the services until all are ready (exit 0), one fails "
        f"(exit {ExitCode.SERVICE_FAILED.value}) or --timeout-ready passes "
        f"(exit {ExitCode.DEADLINE_EXCEEDED.value})",
    )
    parser.add_argument(
        "--timeout-ready",
        metavar="SECONDS",
        type=seconds,
        default=DEFAULT_TIMEOUT_READY,
        help=f"how long --wait waits (default {DEFAULT_TIMEOUT_READY:g})",
    )


COMMAND = Command(
    name="update_services",
    help="make the named services the complete set of dynamic services on the host: start "
    "or restart them as needed and STOP every other dynamic service (persistent ones are "
    "never touched); nothing changes if any service is refused",
    run=run,
    arguments=arguments,
)
