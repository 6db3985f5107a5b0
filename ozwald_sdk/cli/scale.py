"""`ozwald scale DEPLOYMENT N`: set how many instances of a deployment run."""

from __future__ import annotations

import argparse
import textwrap

from ozwald.orchestrator.v1.fleet_service_pb2 import ScaleDeploymentResponse

from ozwald_sdk.cli.command import Command, Invocation
from ozwald_sdk.cli.fleet_options import fleet_client
from ozwald_sdk.cli.render_fleet_plan import change_lines
from ozwald_sdk.cli.service_args import dumps
from ozwald_sdk.cli.text import WIDTH
from ozwald_sdk.errors import ExitCode

# The orchestrator's limit (ScaleDeploymentRequest.replicas), checked here too so that a
# typo is refused before anything is sent.
MAX_REPLICAS = 1000


def run(invocation: Invocation) -> int:
    name, replicas = invocation.args.deployment, invocation.args.replicas
    with fleet_client(invocation) as client:
        before = client.get_deployment(name).deployment.replicas
        response = client.scale_deployment(name, replicas)
    if invocation.json:
        print(dumps(response))
        return ExitCode.OK
    print(render_scale(name, before, response), end="")
    return ExitCode.OK


def render_scale(name: str, before: int, response: ScaleDeploymentResponse) -> str:
    """What changed, then where each instance is (or why it waits)."""
    deployment = response.deployment
    if before == deployment.replicas:
        lines = [f"{name} has {deployment.replicas} replica(s) already: nothing changed."]
    else:
        lines = [
            f"Scaled {name} from {before} to {deployment.replicas} replica(s): deployment "
            f"version {deployment.version}, desired-state version "
            f"{response.plan.desired_version}."
        ]
    for change in response.plan.changes:
        lines.extend(change_lines(change)[1:])
    notes = []
    if any(not i.host_id for c in response.plan.changes for i in c.instances):
        notes.append(
            f"Instances no host can take now stay PENDING; `ozwald explain {name}` says why."
        )
    if before != deployment.replicas:
        notes.append(
            "An `ozwald apply` of a file that says otherwise sets the count back: change "
            "`replicas:` in the file to keep this one."
        )
    for note in notes:
        lines.extend(textwrap.wrap(note, width=WIDTH, break_on_hyphens=False))
    return "\n".join(lines) + "\n"


def _replicas(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= MAX_REPLICAS:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and {MAX_REPLICAS}")
    return value


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("deployment", metavar="DEPLOYMENT", help="the deployment's name")
    parser.add_argument(
        "replicas",
        metavar="N",
        type=_replicas,
        help=f"how many instances should run, 0 to {MAX_REPLICAS}; 0 keeps the deployment "
        "with nothing running",
    )


COMMAND = Command(
    name="scale",
    help="set how many instances of a deployment run (a new deployment version, not a "
    "rollout): new ones are placed, the highest ordinals are removed first; exit "
    f"{ExitCode.DEPLOYMENT_NOT_FOUND.value} if there is no such deployment",
    run=run,
    arguments=arguments,
)
