"""`ozwald config validate|schema|show`: check ozwald.yml, print its JSON Schema, show a
service's effective spec. None of them needs an agent, except `show --ask-agent`."""

from __future__ import annotations

import argparse
import json
import sys

import yaml

from ozwald_sdk.cli.command import Command, Invocation
from ozwald_sdk.cli.config_options import add_config_option, load, reports_invalid_config_as_json
from ozwald_sdk.config import Selector, json_schema_text, resolve
from ozwald_sdk.errors import ExitCode


@reports_invalid_config_as_json
def validate(invocation: Invocation) -> int:
    config = load(invocation)
    realms = config.model.realms
    counts = {
        "realms": len(realms),
        "services": sum(len(r.services) for r in realms.values()),
        "portals": sum(len(r.portals) for r in realms.values()),
    }
    if invocation.json:
        print(json.dumps({"valid": True, "file": str(config.path), **counts, "diagnostics": []}))
    else:
        listed = ", ".join(f"{n} {what[:-1] if n == 1 else what}" for what, n in counts.items())
        print(f"{config.path}: valid ({listed})")
    return ExitCode.OK


def schema(invocation: Invocation) -> int:
    print(json_schema_text(), end="")
    return ExitCode.OK


@reports_invalid_config_as_json
def show(invocation: Invocation) -> int:
    selector = Selector.parse(invocation.args.spec)
    config = load(invocation)
    host = None
    if invocation.args.ask_agent:
        with invocation.agent_client() as client:
            host = client.get_host_profile()
    spec = resolve(config, selector, host)
    if host is None and selector.variety is None and spec.variety is not None:
        print(
            f"note: no host profile, so variety '{spec.variety}' was chosen as for a host "
            f"without GPUs; name one ('{spec.name}[nvidia]') or pass --ask-agent",
            file=sys.stderr,
        )
    document = {**spec.model_dump(mode="json"), "fingerprint": spec.fingerprint()}
    if invocation.json:
        print(json.dumps(document, indent=2))
    else:
        print(yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True), end="")
    return ExitCode.OK


class _Dumper(yaml.SafeDumper):
    """Writes text of several lines (an inline script, say) as a `|` block, as people do."""


def _text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _text)

_ACTIONS = {"validate": validate, "schema": schema, "show": show}


def run(invocation: Invocation) -> int:
    return _ACTIONS[invocation.args.config_action](invocation)


def arguments(parser: argparse.ArgumentParser) -> None:
    # Each action takes the connection and output options `main` gave `parser` (--json,
    # --agent, ...), so that they work after the action too: `ozwald config show x --json`.
    shared = argparse.ArgumentParser(add_help=False, parents=[parser])
    actions = parser.add_subparsers(dest="config_action", metavar="ACTION", required=True)

    def action(name: str, help: str) -> argparse.ArgumentParser:
        return actions.add_parser(
            name, parents=[shared], add_help=False, help=help, description=help
        )

    add_config_option(
        action("validate", "check the config file; print a summary or every problem found")
    )
    action("schema", "print the JSON Schema of ozwald.yml (for editors)")
    show_parser = action(
        "show", "print the effective spec of a service: base, variety and profile merged"
    )
    show_parser.add_argument(
        "spec",
        metavar="SPEC",
        help="[realm:]service[variety][profile], e.g. embed or 'embed[nvidia][fast]'",
    )
    add_config_option(show_parser)
    show_parser.add_argument(
        "--ask-agent",
        action="store_true",
        help="choose the variety for the agent's host (default: as for a host without GPUs)",
    )


COMMAND = Command(
    name="config",
    help="check ozwald.yml, print its JSON Schema, or show a service's effective spec",
    run=run,
    arguments=arguments,
)
