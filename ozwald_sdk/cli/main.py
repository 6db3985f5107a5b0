"""`ozwald`: the command line for Ozwald. Parses, makes one SDK call, renders.

Failures print `error: WHAT` and `hint: WHAT TO DO` on stderr and exit with the error's
code (ozwald_sdk.errors.ExitCode); an OzwaldError never shows a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ozwald_sdk.agent_client import DEFAULT_TIMEOUT
from ozwald_sdk.cli.command import Invocation
from ozwald_sdk.cli.commands import COMMANDS
from ozwald_sdk.errors import ExitCode, OzwaldError
from ozwald_sdk.paths import default_agent_socket, default_orchestrator_socket
from ozwald_sdk.target import (
    AGENT_ENV,
    ORCHESTRATOR_ENV,
    TLS_CA_ENV,
    TLS_CERT_ENV,
    TLS_KEY_ENV,
)
from ozwald_sdk.version import ozwald_version


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ozwald",
        description="Declarative AI services on your own GPU and CPU hosts.",
        epilog="exit codes: "
        + ", ".join(f"{code.value} {code.name.lower().replace('_', ' ')}" for code in ExitCode),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {ozwald_version()}")
    _add_global_options(parser, with_defaults=True)
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        sub = subcommands.add_parser(
            command.name,
            aliases=list(command.aliases),
            help=command.help,
            description=command.help,
        )
        # Global options work after the subcommand too (`ozwald host --json`).
        _add_global_options(sub, with_defaults=False)
        if command.arguments is not None:
            command.arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[Invocation], int] = args.run
    try:
        code = run(Invocation(args))
        # Written out here rather than at exit, so that a reader gone away is seen below.
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # The reader went away (`ozwald hosts --json | head -1`): stop quietly, as cat
        # does. Anything still buffered has nowhere to go; /dev/null takes it, so the
        # interpreter's last flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OK
    except OzwaldError as e:
        print(f"error: {e.message}", file=sys.stderr)
        if e.remedy:
            print(f"hint: {e.remedy}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED


def _add_global_options(parser: argparse.ArgumentParser, *, with_defaults: bool) -> None:
    def default(value: object) -> object:
        # A subcommand's copy must not overwrite what was given before the subcommand.
        return value if with_defaults else argparse.SUPPRESS

    group = parser.add_argument_group("connection and output")
    group.add_argument(
        "--agent",
        metavar="ADDRESS",
        default=default(None),
        help=f"the agent: unix:///path, /path or host:port (TCP needs the TLS options); "
        f"default ${AGENT_ENV}, else {default_agent_socket()}",
    )
    group.add_argument(
        "--orchestrator",
        metavar="ADDRESS",
        default=default(None),
        help=f"the orchestrator, for the fleet commands: unix:///path, /path or host:port "
        f"(TCP needs the TLS options); default ${ORCHESTRATOR_ENV}, else "
        f"{default_orchestrator_socket()}",
    )
    group.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_positive_seconds,
        default=default(DEFAULT_TIMEOUT),
        help=f"give up on a call after this long, retries included (default {DEFAULT_TIMEOUT:g})",
    )
    group.add_argument(
        "--json", action="store_true", default=default(False), help="print JSON for machines"
    )
    for flag, env, what in (
        ("--tls-ca", TLS_CA_ENV, "CA certificate (PEM) that signed the server's certificate"),
        ("--tls-cert", TLS_CERT_ENV, "this client's certificate (PEM)"),
        ("--tls-key", TLS_KEY_ENV, "this client's private key (PEM)"),
    ):
        group.add_argument(
            flag, metavar="FILE", type=Path, default=default(None), help=f"{what}; default ${env}"
        )


def _positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return seconds


if __name__ == "__main__":
    sys.exit(main())
