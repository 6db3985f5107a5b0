"""`ozwald explain DEPLOYMENT`: why each instance is placed where it is, or is not placed."""

from __future__ import annotations

import argparse

from ozwald_sdk.cli.command import Command, Invocation
from ozwald_sdk.cli.fleet_options import fleet_client
from ozwald_sdk.cli.render_explain import render_explanation
from ozwald_sdk.cli.service_args import dumps
from ozwald_sdk.errors import ExitCode


def run(invocation: Invocation) -> int:
    name = invocation.args.deployment
    with fleet_client(invocation) as client:
        response = client.explain_deployment(name)
    if invocation.json:
        print(dumps(response))
    else:
        print(render_explanation(name, response), end="")
    return ExitCode.OK


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("deployment", metavar="DEPLOYMENT", help="the deployment's name")


COMMAND = Command(
    name="explain",
    help="say for each instance of a deployment where it is placed and why, or why no host "
    "can take it (each filter that rejected hosts, how many, and their reasons)",
    run=run,
    arguments=arguments,
)
