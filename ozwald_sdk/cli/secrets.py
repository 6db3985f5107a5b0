"""`ozwald secrets ...`: the agent's vault (docs/secrets.md).

Values come from stdin or `--from-file`, never from the command line (argv is visible
to every user of the host in `ps` and lands in shell history). Nothing prints a value
except `get --reveal`, which writes it to stdout as is.
"""

from __future__ import annotations

import argparse
import datetime
import getpass
import sys
from pathlib import Path

from ozwald.agent.v1 import vault_service_pb2 as pb

from ozwald_sdk.cli.command import Command, Invocation
from ozwald_sdk.cli.service_args import dumps
from ozwald_sdk.errors import ExitCode, OzwaldError
from ozwald_sdk.target import resolve_target
from ozwald_sdk.vault_client import VaultClient

DEFAULT_AUDIT_LIMIT = 50


class SecretsUsageError(OzwaldError):
    """The command line asks for something the vault commands refuse (a value in argv)."""

    exit_code = ExitCode.USAGE


def client(invocation: Invocation) -> VaultClient:
    args = invocation.args
    target = resolve_target(
        args.agent, tls_ca=args.tls_ca, tls_cert=args.tls_cert, tls_key=args.tls_key
    )
    return VaultClient(target, timeout=max(args.timeout, 30.0))


def read_value(source: Path | None, what: str) -> bytes:
    """A value from a file, or stdin (without echo when stdin is a terminal)."""
    if source is not None:
        try:
            return source.read_bytes() if str(source) != "-" else sys.stdin.buffer.read()
        except OSError as e:
            raise SecretsUsageError(
                f"cannot read {source}: {e.strerror}", remedy="check the path"
            ) from e
    if sys.stdin.isatty():
        return getpass.getpass(f"{what}: ").encode()
    return sys.stdin.buffer.read()


def _strip_newline(value: bytes) -> bytes:
    # `echo secret | ozwald secrets set` must store "secret", not "secret\n".
    return value[:-1] if value.endswith(b"\n") else value


def _set(invocation: Invocation) -> int:
    args = invocation.args
    if "=" in args.name:
        raise SecretsUsageError(
            "secret values are never taken from the command line",
            remedy=f"give the name only and the value on stdin: `printf %s VALUE | ozwald "
            f"secrets set {args.locker} {args.name.partition('=')[0]}`, or --from-file FILE",
        )
    value = read_value(args.from_file, f"value of {args.name}")
    if args.from_file is None and not args.keep_newline:
        value = _strip_newline(value)
    with client(invocation) as vault:
        locker = vault.set(args.locker, {args.name: value}, realm=args.realm)
    return _print_locker(invocation, locker, f"set {args.name} in")


def _print_locker(invocation: Invocation, locker: pb.LockerInfo, did: str) -> int:
    if invocation.json:
        print(dumps(locker))
    else:
        print(f"{did} {locker.realm}/{locker.name} (revision {locker.revision})")
    return ExitCode.OK


def _import(invocation: Invocation) -> int:
    args = invocation.args
    content = read_value(args.file, "env file")
    with client(invocation) as vault:
        response = vault.import_env_file(
            args.locker, content, source=str(args.file), realm=args.realm
        )
    if invocation.json:
        print(dumps(response))
        return ExitCode.OK
    print(
        f"imported {len(response.imported)} secret(s) into {response.locker.realm}/"
        f"{response.locker.name} (revision {response.locker.revision}): "
        + ", ".join(response.imported)
    )
    return ExitCode.OK


def _get(invocation: Invocation) -> int:
    args = invocation.args
    with client(invocation) as vault:
        response = vault.get(args.locker, args.name, realm=args.realm, reveal=args.reveal)
    if args.reveal:
        sys.stdout.buffer.write(response.value)
        sys.stdout.buffer.flush()
        return ExitCode.OK
    if invocation.json:
        print(dumps(response.secret))
        return ExitCode.OK
    secret = response.secret
    print(
        f"{args.locker}/{secret.name}: version {secret.version}, {secret.size_bytes} bytes, "
        f"set {_when(secret.updated_at)} (value hidden; --reveal prints it)"
    )
    return ExitCode.OK


def _list(invocation: Invocation) -> int:
    args = invocation.args
    with client(invocation) as vault:
        lockers = vault.list_lockers(realm=args.realm_filter, locker=args.locker or "")
    if invocation.json:
        print(dumps(pb.ListSecretsResponse(lockers=lockers)))
        return ExitCode.OK
    if not lockers:
        print("no lockers")
    for locker in lockers:
        print(f"{locker.realm}/{locker.name}  revision {locker.revision}  key {locker.key_version}")
        for secret in locker.secrets:
            print(f"  {secret.name}  v{secret.version}  {secret.size_bytes} bytes")
    return ExitCode.OK


def _rotate(invocation: Invocation) -> int:
    args = invocation.args
    with client(invocation) as vault:
        response = vault.rotate(args.locker, realm=args.realm)
    if invocation.json:
        print(dumps(response))
        return ExitCode.OK
    print(
        f"rotated {response.locker.realm}/{response.locker.name}: data key "
        f"{response.locker.key_version}, {response.reencrypted_values} value(s) re-encrypted; "
        "running services keep running"
    )
    return ExitCode.OK


def _delete(invocation: Invocation) -> int:
    args = invocation.args
    if not args.names and not args.whole_locker:
        raise SecretsUsageError(
            "name the secrets to delete, or give --whole-locker to delete the locker",
            remedy=f"`ozwald secrets delete {args.locker} NAME ...`",
        )
    with client(invocation) as vault:
        response = vault.delete(args.locker, args.names, realm=args.realm)
    if invocation.json:
        print(dumps(response))
    elif response.locker_deleted:
        print(f"deleted locker {args.locker} ({len(response.deleted)} secret(s))")
    else:
        print(f"deleted {', '.join(response.deleted)} from {args.locker}")
    return ExitCode.OK


def _unlock(invocation: Invocation) -> int:
    args = invocation.args
    passphrase = _strip_newline(read_value(args.passphrase_file, "vault passphrase"))
    with client(invocation) as vault:
        created = vault.unlock(passphrase, create=args.create)
    print("vault created and unlocked" if created else "vault unlocked")
    return ExitCode.OK


def _lock(invocation: Invocation) -> int:
    with client(invocation) as vault:
        vault.lock()
    print("vault locked")
    return ExitCode.OK


def _passphrase(invocation: Invocation) -> int:
    args = invocation.args
    old = _strip_newline(read_value(args.passphrase_file, "current vault passphrase"))
    new = _strip_newline(read_value(args.new_passphrase_file, "new vault passphrase"))
    with client(invocation) as vault:
        count = vault.change_passphrase(old, new)
    print(f"passphrase changed; {count} data key(s) re-wrapped")
    return ExitCode.OK


def _status(invocation: Invocation) -> int:
    with client(invocation) as vault:
        status = vault.status(invocation.args.realm_filter)
    if invocation.json:
        print(dumps(status))
        return ExitCode.OK
    state = "unlocked" if status.unlocked else "locked"
    if not status.exists:
        state = "not created (`ozwald secrets unlock --create`)"
    print(f"vault: {state}; backend {status.backend}; {len(status.lockers)} locker(s)")
    for locker in status.lockers:
        print(f"  {locker.realm}/{locker.name}  revision {locker.revision}")
    return ExitCode.OK


def _audit(invocation: Invocation) -> int:
    args = invocation.args
    with client(invocation) as vault:
        records = vault.audit(realm=args.realm_filter, limit=args.limit)
    if invocation.json:
        print(dumps(pb.ListSecretAuditResponse(records=records)))
        return ExitCode.OK
    for r in records:
        where = "/".join(p for p in (r.realm, r.locker) if p)
        names = f" [{r.names}]" if r.names else ""
        print(f"{_when(r.at)}  {r.who}  {r.action}  {where}{names}  {r.outcome}")
    return ExitCode.OK


def _when(stamp: object) -> str:
    to_datetime = getattr(stamp, "ToDatetime", None)
    if to_datetime is None:
        return "?"
    moment: datetime.datetime = to_datetime(tzinfo=datetime.UTC)
    return moment.isoformat(timespec="seconds")


def _run(invocation: Invocation) -> int:
    handlers = {
        "set": _set,
        "import": _import,
        "get": _get,
        "list": _list,
        "rotate": _rotate,
        "delete": _delete,
        "unlock": _unlock,
        "lock": _lock,
        "passphrase": _passphrase,
        "status": _status,
        "audit": _audit,
    }
    return handlers[invocation.args.secrets_command](invocation)


def arguments(parser: argparse.ArgumentParser) -> None:
    # Every subcommand takes the connection and output options `main` gave `parser`
    # (--agent, --timeout, --json, TLS), so that they work after it too.
    shared = argparse.ArgumentParser(add_help=False, parents=[parser])
    what = parser.add_subparsers(dest="secrets_command", metavar="WHAT", required=True)

    def sub(name: str, help: str, *, realm: bool = True) -> argparse.ArgumentParser:
        p = what.add_parser(name, parents=[shared], add_help=False, help=help, description=help)
        if realm:
            p.add_argument(
                "--realm", default="default", help="the vault's realm (default: default)"
            )
        return p

    p = sub("set", "set one secret; the value comes from stdin or --from-file, never argv")
    p.add_argument("locker")
    p.add_argument("name")
    p.add_argument("--from-file", type=Path, metavar="FILE", help="read the value from FILE")
    p.add_argument(
        "--keep-newline", action="store_true", help="keep a trailing newline read from stdin"
    )
    p = sub("import", "set secrets from an env file (NAME=VALUE lines; '-' for stdin)")
    p.add_argument("locker")
    p.add_argument("file", type=Path)
    p = sub("get", "a secret's metadata; its value only with --reveal")
    p.add_argument("locker")
    p.add_argument("name")
    p.add_argument("--reveal", action="store_true", help="print the value to stdout (audited)")
    p = sub("list", "lockers and their secrets' names (never values)", realm=False)
    p.add_argument("locker", nargs="?")
    p.add_argument("--realm", dest="realm_filter", default="", help="only this realm")
    p = sub("rotate", "give a locker a new data key; re-encrypts its values, restarts nothing")
    p.add_argument("locker")
    p = sub("delete", "delete secrets of a locker, or the whole locker")
    p.add_argument("locker")
    p.add_argument("names", nargs="*")
    p.add_argument("--whole-locker", action="store_true", help="delete the locker itself")
    p = sub(
        "unlock", "unlock the agent's vault; passphrase on stdin or --passphrase-file", realm=False
    )
    p.add_argument("--create", action="store_true", help="create the vault if there is none")
    p.add_argument("--passphrase-file", type=Path, metavar="FILE")
    sub("lock", "forget the vault key until the next unlock", realm=False)
    p = sub("passphrase", "change the vault passphrase (re-wraps every data key)", realm=False)
    p.add_argument("--passphrase-file", type=Path, metavar="FILE", help="the current passphrase")
    p.add_argument("--new-passphrase-file", type=Path, metavar="FILE", required=True)
    p = sub("status", "whether the vault exists and is unlocked; its lockers", realm=False)
    p.add_argument("--realm", dest="realm_filter", default="", help="only this realm")
    p = sub("audit", "who read or changed what, when (never values)", realm=False)
    p.add_argument("--realm", dest="realm_filter", default="", help="only this realm")
    p.add_argument("--limit", type=int, default=DEFAULT_AUDIT_LIMIT, help="newest N records")


COMMAND = Command(
    name="secrets",
    help="the agent's vault: set | get --reveal | list | rotate | delete | import | unlock | "
    "lock | passphrase | status | audit",
    run=_run,
    arguments=arguments,
)
