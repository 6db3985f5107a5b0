"""`ozwald audit [filters]` and `ozwald audit verify`: who did what to the fleet, and
whether the record of it is intact (docs/audit.md).

With --json, the listing is one JSON object per line (JSON Lines), so it can be piped
to a file and checked later with `ozwald audit verify --file FILE`.
"""

from __future__ import annotations

import argparse
import datetime
import re
import sys
from pathlib import Path

from ozwald.orchestrator.v1.audit_service_pb2 import AuditBreak, VerifyAuditLogResponse

from ozwald_sdk.audit_client import AuditClient, record_to_json, verify_export
from ozwald_sdk.cli.command import Command, Invocation
from ozwald_sdk.cli.render_audit import record_line, verification_text
from ozwald_sdk.cli.service_args import dumps
from ozwald_sdk.errors import AuditExportError, AuditTamperedError, ExitCode
from ozwald_sdk.target import resolve_orchestrator_target

_AGO = re.compile(r"(\d+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


def _client(invocation: Invocation) -> AuditClient:
    args = invocation.args
    target = resolve_orchestrator_target(
        args.orchestrator, tls_ca=args.tls_ca, tls_cert=args.tls_cert, tls_key=args.tls_key
    )
    return AuditClient(target, timeout=args.timeout)


def run(invocation: Invocation) -> int:
    if invocation.args.audit_command == "verify":
        return _verify(invocation)
    args = invocation.args
    shown = 0
    with _client(invocation) as client:
        # A reader that goes away (`ozwald audit | head`) stops the fetching: cli/main.py.
        for record in client.records(
            since=args.since,
            until=args.until,
            deployment=args.deployment,
            host_id=args.host,
            actor=args.actor,
            kind=args.kind,
            after_sequence=args.after,
            limit=args.limit,
        ):
            shown += 1
            line = record_to_json(record) if invocation.json else record_line(record)
            print(line, flush=True)
    if not shown and not invocation.json:
        print("no audit records match", file=sys.stderr)
    return ExitCode.OK


def _verify(invocation: Invocation) -> int:
    args = invocation.args
    anchor_sequence, anchor_hash = args.anchor or (0, "")
    if args.file is not None:
        source = f"the export {args.file}"
        result = _verify_file(args.file, anchor_sequence, anchor_hash, partial=args.partial)
    else:
        source = "the audit log"
        with _client(invocation) as client:
            result = client.verify(anchor_sequence=anchor_sequence, anchor_hash=anchor_hash)
    if invocation.json:
        print(dumps(result))
    elif result.ok:
        print(verification_text(result, source=source), end="")
    if not result.ok:
        raise _tampered(result, source, export=args.file is not None)
    return ExitCode.OK


def _verify_file(
    path: Path, anchor_sequence: int, anchor_hash: str, *, partial: bool
) -> VerifyAuditLogResponse:
    try:
        if str(path) == "-":
            return verify_export(
                sys.stdin,
                anchor_sequence=anchor_sequence,
                anchor_hash=anchor_hash,
                partial=partial,
            )
        with path.open(encoding="utf-8") as lines:
            return verify_export(
                lines, anchor_sequence=anchor_sequence, anchor_hash=anchor_hash, partial=partial
            )
    except (OSError, UnicodeDecodeError) as e:
        raise AuditExportError(
            f"cannot read {path}: {e}",
            remedy="give a file written by `ozwald audit --json > FILE`",
        ) from e
    except AuditExportError as e:
        raise AuditExportError(f"{path}: {e.message}", remedy=e.remedy) from e


def _tampered(result: VerifyAuditLogResponse, source: str, *, export: bool) -> AuditTamperedError:
    bad = result.first_bad_sequence
    where = f"record {bad}" if bad else "its head checkpoint"
    intact = f"records before {bad} check out" if bad > 1 else "no record checks out"
    if export:
        remedy = (
            f"{intact}; compare the export with the orchestrator's own log "
            "(`ozwald audit verify`) or another copy"
        )
    else:
        remedy = (
            f"{intact}; find out who could write the orchestrator's state directory, and "
            "compare with an export or backup kept elsewhere"
            + (f" (`ozwald audit --after {bad - 1} --limit 1` shows the record)" if bad else "")
        )
    return AuditTamperedError(
        f"{source} is broken at {where}: {result.problem}",
        remedy=remedy,
        metadata={
            "sequence": str(result.first_bad_sequence),
            "break_kind": AuditBreak.Name(result.break_kind),
        },
    )


def _when(text: str) -> datetime.datetime:
    """`2026-11-27T10:00:00Z`, `2026-11-27` (UTC unless it says otherwise), or an age
    such as `90s`, `15m`, `2h`, `7d` (that long ago)."""
    ago = _AGO.fullmatch(text.strip())
    if ago:
        seconds = int(ago.group(1)) * _UNIT_SECONDS[ago.group(2)]
        return datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=seconds)
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a time like 2026-11-27T10:00:00Z nor an age like 15m, 2h, 7d"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (0 or more)")
    return int(text)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number above 0")
    return int(text)


def _anchor(text: str) -> tuple[int, str]:
    sequence, _, digest = text.partition(":")
    if not sequence.isdigit() or int(sequence) == 0 or not _HEX64.fullmatch(digest):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not SEQUENCE:HASH (the head a previous `ozwald audit verify` printed)"
        )
    return int(sequence), digest.lower()


def arguments(parser: argparse.ArgumentParser) -> None:
    # `verify` takes the connection and output options `main` gave `parser` after it too.
    shared = argparse.ArgumentParser(add_help=False, parents=[parser])
    parser.add_argument(
        "--since",
        type=_when,
        metavar="WHEN",
        help="only records from then on: a time (2026-11-27T10:00:00Z, 2026-11-27; UTC "
        "unless it says otherwise) or an age (90s, 15m, 2h, 7d)",
    )
    parser.add_argument(
        "--until", type=_when, metavar="WHEN", help="only records before then (as --since)"
    )
    parser.add_argument("--deployment", default="", metavar="NAME", help="only this deployment")
    parser.add_argument("--host", default="", metavar="HOST_ID", help="only this host")
    parser.add_argument(
        "--actor",
        default="",
        metavar="ACTOR",
        help="only this actor (operator:alice, local:uid=0, orchestrator) or, ending in ':', "
        "this kind of actor (operator:)",
    )
    parser.add_argument(
        "--kind", default="", metavar="KIND", help="only this kind (deployment-updated, ...)"
    )
    parser.add_argument(
        "--after",
        type=_count,
        default=0,
        metavar="N",
        help="only records after sequence N",
    )
    parser.add_argument(
        "--limit", type=_positive, default=None, metavar="N", help="at most N records"
    )
    what = parser.add_subparsers(dest="audit_command", metavar="[verify]", required=False)
    verify_help = (
        "check the hash chain from the first record (exit 20 naming the first bad record "
        "when it is broken); --file checks an export instead, here"
    )
    verify = what.add_parser(
        "verify", parents=[shared], add_help=False, help=verify_help, description=verify_help
    )
    verify.add_argument(
        "--anchor",
        type=_anchor,
        metavar="SEQUENCE:HASH",
        help="also require this record (a head printed by an earlier verify, kept "
        "elsewhere) to still be in the log: catches records cut off the end",
    )
    verify.add_argument(
        "--file",
        type=Path,
        metavar="FILE",
        help="verify an export (`ozwald audit --json > FILE`; '-' for stdin) instead of "
        "asking the orchestrator",
    )
    verify.add_argument(
        "--partial",
        action="store_true",
        help="with --file: the export starts after record 1 (`ozwald audit --after N "
        "--json`); its first link is taken on trust",
    )


COMMAND = Command(
    name="audit",
    help="list who did what to the fleet and when (operators, agents, the orchestrator), "
    "with the state before and after; `audit verify` checks the log is intact",
    run=run,
    arguments=arguments,
)
