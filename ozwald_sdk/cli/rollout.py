"""`ozwald rollout status|pause|resume|promote|undo DEPLOYMENT`: follow and steer a
deployment's rolling update (docs/operations.md, "Rolling updates")."""

from __future__ import annotations

import argparse
import datetime
import textwrap

from google.protobuf.duration_pb2 import Duration
from ozwald.orchestrator.v1 import rollout_pb2

from ozwald_sdk.cli.command import Command, Invocation
from ozwald_sdk.cli.fleet_options import age, fleet_client, iso
from ozwald_sdk.cli.service_args import dumps
from ozwald_sdk.cli.text import INDENT, WIDTH
from ozwald_sdk.errors import ExitCode

R = rollout_pb2

_DONE = {"pause": "Paused", "resume": "Resumed", "promote": "Promoted"}


def run(invocation: Invocation) -> int:
    args = invocation.args
    action: str = args.rollout_command
    name: str = args.deployment
    with fleet_client(invocation) as client:
        if action == "undo":
            response = client.undo_rollout(name, args.to_version)
            if invocation.json:
                print(dumps(response))
                return ExitCode.OK
            deployment = response.deployment
            rollout = response.rollout
            if rollout.to_version == deployment.version and rollout.is_revert:
                # The rollout's reason names the version whose spec came back.
                head = f"{name} is now version {deployment.version}; rolling it out."
            else:
                head = f"{name} already runs that spec: nothing changed."
            print(_wrap(head) + render_rollout(rollout, _now()), end="")
            return ExitCode.OK
        if action == "status":
            rollout = client.get_rollout(name)
        elif action == "pause":
            rollout = client.pause_rollout(name)
        elif action == "resume":
            rollout = client.resume_rollout(name)
        else:
            rollout = client.promote_rollout(name)
    if invocation.json:
        print(dumps(rollout))
        return ExitCode.OK
    head = f"{_DONE[action]} the rollout of {name}.\n" if action in _DONE else ""
    print(head + render_rollout(rollout, _now()), end="")
    return ExitCode.OK


def render_rollout(rollout: R.Rollout, now: datetime.datetime) -> str:
    """Where a rollout stands, for people."""
    state = R.RolloutState.Name(rollout.state).removeprefix("ROLLOUT_STATE_").lower()
    kind = " (revert)" if rollout.is_revert else ""
    lines = [
        f"{rollout.deployment}: rollout {rollout.id}{kind}, version {rollout.from_version} -> "
        f"{rollout.to_version}: {state.replace('_', ' ')}"
    ]
    desired = rollout.desired
    lines.append(
        f"{INDENT}updated {rollout.updated}/{desired}, healthy {rollout.healthy}/{desired}, "
        f"available {rollout.available}/{desired}"
    )
    strategy = rollout.strategy
    canaries = ""
    if strategy.canaries:
        canaries = (
            f", canaries {strategy.canaries} ({'promoted' if rollout.promoted else 'not promoted'}"
        )
        canaries += ", auto-promote)" if strategy.auto_promote else ")"
    lines.extend(
        textwrap.wrap(
            f"strategy: max_parallel {strategy.max_parallel}, min_healthy_time "
            f"{_span(strategy.min_healthy_time)}, healthy_deadline "
            f"{_span(strategy.healthy_deadline)}, progress_deadline "
            f"{_span(strategy.progress_deadline)}, auto_revert "
            f"{'on' if strategy.auto_revert else 'off'}{canaries}",
            width=WIDTH,
            initial_indent=INDENT,
            subsequent_indent=INDENT * 2,
        )
    )
    lines.append(f"{INDENT}started {iso(rollout.started_at)} ({age(rollout.started_at, now)} ago)")
    if rollout.HasField("finished_at"):
        lines.append(f"{INDENT}finished {iso(rollout.finished_at)}")
    elif rollout.HasField("progress_deadline"):
        left = rollout.progress_deadline.ToDatetime(datetime.UTC) - now
        lines.append(
            f"{INDENT}deadline {iso(rollout.progress_deadline)} (fails in "
            f"{_seconds(left.total_seconds())} unless an instance becomes healthy)"
        )
    if rollout.reason:
        lines.extend(
            textwrap.wrap(
                rollout.reason,
                width=WIDTH,
                initial_indent=INDENT,
                subsequent_indent=INDENT,
                break_on_hyphens=False,
            )
        )
    return "\n".join(lines) + "\n"


def _span(duration: Duration) -> str:
    return _seconds(duration.ToTimedelta().total_seconds())


def _seconds(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    if seconds >= 120:
        return f"{seconds / 60:.0f}m"
    return f"{seconds:.0f}s"


def _wrap(text: str) -> str:
    return "\n".join(textwrap.wrap(text, width=WIDTH, break_on_hyphens=False)) + "\n"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _version(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a deployment version (1, 2, ...)")
    return int(text)


def arguments(parser: argparse.ArgumentParser) -> None:
    # Every subcommand takes the connection and output options `main` gave `parser`
    # (--orchestrator, --timeout, --json, TLS), so that they work after it too.
    shared = argparse.ArgumentParser(add_help=False, parents=[parser])
    what = parser.add_subparsers(dest="rollout_command", metavar="ACTION", required=True)
    helps = {
        "status": "where the deployment's current (or latest) rollout stands: state, updated, "
        "healthy and available of desired, deadline (exit 22 if it never had one)",
        "pause": "stop the running rollout from replacing more instances",
        "resume": "continue a paused rollout; its progress deadline starts again",
        "promote": "let a rollout whose canaries are healthy replace the rest",
        "undo": "go back to the spec of the version the latest rollout replaced (or "
        "--to-version N): a new version, rolled out",
    }
    for name, text in helps.items():
        sub = what.add_parser(name, parents=[shared], add_help=False, help=text, description=text)
        sub.add_argument("deployment", metavar="DEPLOYMENT", help="the deployment's name")
        if name == "undo":
            sub.add_argument(
                "--to-version",
                type=_version,
                default=0,
                metavar="N",
                help="the version whose spec to bring back (`ozwald deployments` shows the "
                "current one)",
            )


COMMAND = Command(
    name="rollout",
    help="follow and steer a deployment's rolling update: status, pause, resume, promote, "
    "undo (exit 23 when the rollout is not in a state the action applies to)",
    run=run,
    arguments=arguments,
)
