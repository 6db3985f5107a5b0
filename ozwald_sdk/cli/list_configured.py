"""`ozwald list_configured_services`: the services ozwald.yml defines (no agent needed)."""

from __future__ import annotations

import argparse
import dataclasses
import json

from ozwald_sdk.cli.command import Command, Invocation
from ozwald_sdk.cli.config_options import add_config_option, load, reports_invalid_config_as_json
from ozwald_sdk.cli.text import render_table
from ozwald_sdk.config import ConfiguredService, PortalSummary, configured_services
from ozwald_sdk.errors import ExitCode

LOOPBACK = "127.0.0.1"
_HEADERS = ("REALM", "SERVICE", "VARIETIES", "PROFILES", "PERSISTENT", "PORTALS")


@reports_invalid_config_as_json
def run(invocation: Invocation) -> int:
    config = load(invocation)
    services = configured_services(config)
    if invocation.json:
        print(json.dumps([dataclasses.asdict(s) for s in services], indent=2))
    elif not services:
        print(f"{config.path} defines no services")
    else:
        print("\n".join(render_table(_HEADERS, [_row(s) for s in services], shrink=3)))
    return ExitCode.OK


def _row(service: ConfiguredService) -> list[str]:
    return [
        service.realm,
        service.name,
        ",".join(service.varieties) or "-",
        ",".join(service.profiles) or "-",
        "yes" if service.persistent else "no",
        ",".join(_portal(p) for p in service.portals) or "-",
    ]


def _portal(portal: PortalSummary) -> str:
    """`18080->8080` on loopback (the default), else `0.0.0.0:18080->8080`, as `docker ps`
    writes published ports; names and addresses are all in --json."""
    forward = f"->{portal.container_port}" if portal.container_port is not None else ""
    if portal.host_ip == LOOPBACK:
        return f"{portal.host_port}{forward}"
    host = f"[{portal.host_ip}]" if ":" in portal.host_ip else portal.host_ip
    return f"{host}:{portal.host_port}{forward}"


def arguments(parser: argparse.ArgumentParser) -> None:
    add_config_option(parser)


COMMAND = Command(
    name="list_configured_services",
    help="list the services in ozwald.yml: realm, varieties, profiles, persistence, portals "
    "(host port->container port, on 127.0.0.1 unless an address is shown)",
    run=run,
    arguments=arguments,
)
