"""`ozwald volumes list | snapshot REALM VOLUME | versions REALM VOLUME` (docs/volumes.md).

Encrypted volumes on the agent: which exist and who mounts them; persisting a versioned
volume's working copy as a new immutable version; its versions with their hashes.
"""

from __future__ import annotations

import argparse
import datetime

from ozwald.agent.v1 import volume_service_pb2 as pb

from ozwald_sdk.cli.command import Command, Invocation
from ozwald_sdk.cli.service_args import dumps
from ozwald_sdk.errors import ExitCode
from ozwald_sdk.target import resolve_target
from ozwald_sdk.volume_client import VolumeClient


def client(invocation: Invocation) -> VolumeClient:
    args = invocation.args
    target = resolve_target(
        args.agent, tls_ca=args.tls_ca, tls_cert=args.tls_cert, tls_key=args.tls_key
    )
    return VolumeClient(target, timeout=max(args.timeout, 120.0))


def _list(invocation: Invocation) -> int:
    with client(invocation) as volumes:
        found = volumes.volumes(invocation.args.realm_filter)
    if invocation.json:
        print(dumps(pb.ListVolumesResponse(volumes=found)))
        return ExitCode.OK
    print(f"{'REALM':<16} {'VOLUME':<20} {'VERSIONS':>8}  MOUNTED BY")
    for v in found:
        print(f"{v.realm:<16} {v.name:<20} {v.version_count:>8}  {', '.join(v.mounted_by) or '-'}")
    return ExitCode.OK


def _snapshot(invocation: Invocation) -> int:
    args = invocation.args
    with client(invocation) as volumes:
        version = volumes.snapshot(args.realm, args.volume)
    if invocation.json:
        print(dumps(version))
        return ExitCode.OK
    print(
        f"{args.realm}/{args.volume}: version {version.number} "
        f"({version.file_count} files, sha256 {version.content_sha256})"
    )
    return ExitCode.OK


def _versions(invocation: Invocation) -> int:
    args = invocation.args
    with client(invocation) as volumes:
        found = volumes.versions(args.realm, args.volume)
    if invocation.json:
        print(dumps(pb.ListVolumeVersionsResponse(versions=found)))
        return ExitCode.OK
    print(f"{'VERSION':>7}  {'CREATED':<25} {'FILES':>6} {'BYTES':>12}  SHA-256")
    for v in found:
        created = v.created_at.ToDatetime(tzinfo=datetime.UTC).isoformat(timespec="seconds")
        print(
            f"{v.number:>7}  {created:<25} {v.file_count:>6} {v.size_bytes:>12}  {v.content_sha256}"
        )
    return ExitCode.OK


def _run(invocation: Invocation) -> int:
    handlers = {"list": _list, "snapshot": _snapshot, "versions": _versions}
    return handlers[invocation.args.volumes_command](invocation)


def arguments(parser: argparse.ArgumentParser) -> None:
    # Every subcommand takes the connection and output options `main` gave `parser`
    # (--agent, --timeout, --json, TLS), so that they work after it too.
    shared = argparse.ArgumentParser(add_help=False, parents=[parser])
    what = parser.add_subparsers(dest="volumes_command", metavar="WHAT", required=True)

    def sub(name: str, help: str) -> argparse.ArgumentParser:
        p = what.add_parser(name, parents=[shared], add_help=False, help=help, description=help)
        return p

    p = sub("list", "the agent's encrypted volumes and the containers that mount them")
    p.add_argument("--realm", dest="realm_filter", default="", help="only this realm")
    p = sub("snapshot", "persist a versioned volume's working copy as a new immutable version")
    p.add_argument("realm")
    p.add_argument("volume")
    p = sub("versions", "a versioned volume's versions, with their content hashes")
    p.add_argument("realm")
    p.add_argument("volume")


COMMAND = Command(
    name="volumes",
    help="the agent's encrypted volumes: list | snapshot REALM VOLUME | versions REALM VOLUME",
    run=_run,
    arguments=arguments,
)
