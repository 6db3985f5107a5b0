"""`ozwald ca init | issue`: the fleet's certificate authority (docs/certificates.md).

Nothing here talks to a server: the CA is files on the operator's machine. Keep ca.key
off the hosts; copy each host only ca.crt and its own certificate and key.
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

from ozwald_sdk import ca
from ozwald_sdk.cli.command import Command, Invocation
from ozwald_sdk.errors import ExitCode


def _init(invocation: Invocation) -> int:
    args = invocation.args
    files = ca.init_ca(args.dir, name=args.name, days=args.days, force=args.force)
    if invocation.json:
        print(
            json.dumps(
                {
                    "key": str(files.key),
                    "cert": str(files.cert),
                    "not_after": _iso(files.not_after),
                },
                indent=2,
            )
        )
        return ExitCode.OK
    print(f"Created the CA '{args.name}' in {args.dir}, valid until {_day(files.not_after)}:")
    print(f"  {files.cert}  give this to every agent, orchestrator and operator (--tls-ca)")
    print(f"  {files.key}  keep it here, secret (mode 0600); it signs every certificate")
    print()
    print("Next: `ozwald ca issue --dir DIR --role orchestrator NAME --san HOST` for the")
    print("orchestrator, then one `--role agent HOST_ID` per host and `--role operator USER`.")
    return ExitCode.OK


def _issue(invocation: Invocation) -> int:
    args = invocation.args
    issued = ca.issue(
        args.dir,
        args.role,
        args.name,
        sans=args.san,
        days=args.days,
        not_after=args.not_after,
        out=args.out,
        force=args.force,
    )
    if invocation.json:
        print(
            json.dumps(
                {
                    "role": issued.role,
                    "name": issued.name,
                    "cert": str(issued.cert),
                    "key": str(issued.key),
                    "ca_cert": str(issued.ca_cert),
                    "not_before": _iso(issued.not_before),
                    "not_after": _iso(issued.not_after),
                    "sans": list(issued.sans),
                },
                indent=2,
            )
        )
        return ExitCode.OK
    now = datetime.datetime.now(datetime.UTC)
    expired = " (ALREADY EXPIRED)" if issued.not_after <= now else ""
    article = "an" if issued.role[0] in "aeiou" else "a"
    print(
        f"Issued {article} {issued.role} certificate for '{issued.name}', valid until "
        f"{_day(issued.not_after)}{expired}:"
    )
    print(f"  certificate  {issued.cert}")
    print(f"  key          {issued.key} (mode 0600)")
    print(f"  CA           {issued.ca_cert}")
    if issued.sans:
        print(f"  names        {', '.join(issued.sans)}")
    print()
    print(_usage_hint(issued))
    return ExitCode.OK


def _usage_hint(issued: ca.IssuedFiles) -> str:
    if issued.role == "agent":
        return (
            f"On host '{issued.name}': ozwald-agent --orchestrator HOST:PORT "
            f"--fleet-ca {issued.ca_cert} --fleet-cert {issued.cert} --fleet-key {issued.key}\n"
            "(the orchestrator knows the host by this certificate's name)"
        )
    if issued.role == "operator":
        return (
            f"Use it with: ozwald --orchestrator HOST:PORT --tls-ca {issued.ca_cert} "
            f"--tls-cert {issued.cert} --tls-key {issued.key} hosts"
        )
    return (
        f"Serve with: ozwald-orchestrator --listen HOST:PORT --tls-client-ca {issued.ca_cert} "
        f"--tls-cert {issued.cert} --tls-key {issued.key}"
    )


def _iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


def _day(moment: datetime.datetime) -> str:
    return f"{moment.astimezone(datetime.UTC):%Y-%m-%d %H:%M} UTC"


def _run(invocation: Invocation) -> int:
    handlers = {"init": _init, "issue": _issue}
    return handlers[invocation.args.ca_command](invocation)


def _timestamp(text: str) -> datetime.datetime:
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date and time like 2027-01-31T12:00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def _whole_days(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None


def arguments(parser: argparse.ArgumentParser) -> None:
    # The subcommands take the output options `main` gave `parser` (--json) after them too.
    shared = argparse.ArgumentParser(add_help=False, parents=[parser])
    what = parser.add_subparsers(dest="ca_command", metavar="WHAT", required=True)

    def sub(name: str, help: str) -> argparse.ArgumentParser:
        p = what.add_parser(name, parents=[shared], add_help=False, help=help, description=help)
        p.add_argument(
            "--dir",
            type=Path,
            required=True,
            metavar="DIR",
            help="the CA's directory (ca.key, ca.crt)",
        )
        p.add_argument("--force", action="store_true", help="replace files that exist")
        return p

    p = sub("init", "create a CA: an EC P-256 key (mode 0600) and a self-signed certificate")
    p.add_argument(
        "--days",
        type=_whole_days,
        default=ca.DEFAULT_CA_DAYS,
        help=f"how long the CA is valid (default {ca.DEFAULT_CA_DAYS}, ten years)",
    )
    p.add_argument(
        "--name", default=ca.DEFAULT_CA_NAME, help=f"the CA's common name ({ca.DEFAULT_CA_NAME})"
    )
    p = sub(
        "issue",
        "issue a certificate signed by the CA: NAME.crt and NAME.key (mode 0600) in --out",
    )
    p.add_argument(
        "name",
        metavar="NAME",
        help="the certificate's common name: an agent's host id, an operator's user name, "
        "the orchestrator's name",
    )
    p.add_argument(
        "--role",
        choices=ca.ROLES,
        required=True,
        help="agent and operator get client certificates; orchestrator a server certificate",
    )
    p.add_argument(
        "--san",
        action="append",
        default=[],
        metavar="DNS_OR_IP",
        help="a DNS name or IP address clients dial (repeat it); for the orchestrator, "
        "default localhost, 127.0.0.1 and ::1",
    )
    validity = p.add_mutually_exclusive_group()
    validity.add_argument(
        "--days",
        type=_whole_days,
        default=ca.DEFAULT_LEAF_DAYS,
        help=f"how long the certificate is valid (default {ca.DEFAULT_LEAF_DAYS})",
    )
    validity.add_argument(
        "--not-after",
        type=_timestamp,
        default=None,
        metavar="TIME",
        help="an exact end of validity (ISO 8601, UTC unless it says otherwise); it may lie "
        "in the past, to check that an expired certificate is refused",
    )
    p.add_argument(
        "--out", type=Path, default=None, metavar="DIR", help="where to write (default --dir)"
    )


COMMAND = Command(
    name="ca",
    help="the fleet's certificate authority: init | issue (agent, operator and "
    "orchestrator certificates for mutual TLS)",
    run=_run,
    arguments=arguments,
)
