"""`ozwald-orchestrator`: the fleet's control plane (docs/orchestrator.md).

Exit codes: 0 stopped cleanly (SIGTERM/SIGINT), 1 unexpected failure, 2 bad usage,
3 another orchestrator already owns the state directory or the socket, 4 a listener
could not be opened (address in use, permissions, unreadable TLS files), 5 the store
could not be opened (unreadable, or written by a newer orchestrator).

With --listen it writes the TCP port it bound to STATE_DIR/orchestrator.port (useful
with port 0) and logs it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import faulthandler
import grp
import logging
import os
import signal
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

from ozwald_orchestrator.audit import AuditLog, AuditSchemaError
from ozwald_orchestrator.clock import SystemClock
from ozwald_orchestrator.fleet import Fleet, FleetSettings
from ozwald_orchestrator.health_monitor import HealthSettings
from ozwald_orchestrator.placement.registry import StrategyLoadError, StrategyRegistry
from ozwald_orchestrator.server import OrchestratorServer
from ozwald_orchestrator.store.sqlite import SqliteFleetStore, StoreVersionError
from ozwald_sdk.logs import add_logging_options, configure_logging
from ozwald_sdk.paths import default_orchestrator_socket, default_orchestrator_state_dir
from ozwald_sdk.process.exclusive_lock import ExclusiveLock, LockHeldError
from ozwald_sdk.process.listeners import (
    ListenError,
    TlsListener,
    TlsMaterialError,
    socket_path_problem,
)
from ozwald_sdk.process.unix_socket import NotASocketError, SocketInUseError, prepare_socket_path
from ozwald_sdk.version import ozwald_version

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_IN_USE = 3
EXIT_LISTEN = 4
EXIT_STORE = 5

PORT_FILE = "orchestrator.port"
STORE_FILE = "orchestrator.db"


class _Refused(Exception):
    def __init__(self, code: int, message: str, remedy: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.remedy = remedy


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ozwald-orchestrator",
        description="Ozwald's fleet orchestrator: desired state, placement, health and "
        "recovery for the agents that connect to it.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {ozwald_version()}")
    parser.add_argument(
        "--socket",
        type=Path,
        default=default_orchestrator_socket(),
        help="unix socket serving FleetService to local operators (default: %(default)s)",
    )
    parser.add_argument(
        "--socket-group",
        metavar="GROUP",
        help="group that owns the socket; its members may use it (mode 0660)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=default_orchestrator_state_dir(),
        help="directory for the orchestrator's store (default: %(default)s)",
    )
    parser.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="serve agents (and operators with an operator certificate) over TCP with "
        "mutual TLS; requires --tls-cert, --tls-key and --tls-client-ca. Port 0 picks a "
        f"free port, written to STATE_DIR/{PORT_FILE}",
    )
    parser.add_argument("--tls-cert", type=Path, help="server certificate (PEM) for --listen")
    parser.add_argument("--tls-key", type=Path, help="server private key (PEM) for --listen")
    parser.add_argument(
        "--tls-client-ca",
        type=Path,
        help="CA (PEM) that must have signed every agent's and operator's certificate",
    )
    parser.add_argument(
        "--strategy",
        default="binpack",
        choices=StrategyRegistry.discover().names(),
        help="placement strategy of deployments that name none: a built-in or an installed "
        "plugin's (docs/operations.md; default: %(default)s)",
    )
    parser.add_argument(
        "--heartbeat-interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="how often agents send heartbeats (default: %(default)s)",
    )
    parser.add_argument(
        "--heartbeat-ttl",
        type=float,
        default=3.0,
        metavar="SECONDS",
        help="a host silent this long is down (default: %(default)s)",
    )
    parser.add_argument(
        "--reschedule-grace",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="a host down this long is lost and its instances are placed elsewhere; a host "
        "back sooner moves nothing (default: %(default)s)",
    )
    parser.add_argument(
        "--restart-grace",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="after a restart, no host is declared lost (nothing moves), and no host whose "
        "agent has not reconnected yet is declared down, for this long, so that agents "
        "have time to reconnect (default: %(default)s)",
    )
    parser.add_argument(
        "--drift-grace",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="drift older than this is corrected by sending the assignment again "
        "(default: %(default)s)",
    )
    add_logging_options(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    tls = (args.tls_cert, args.tls_key, args.tls_client_ca)
    if args.listen is None and any(tls):
        parser.error("--tls-cert, --tls-key and --tls-client-ca only make sense with --listen")
    if args.listen is not None and not all(tls):
        parser.error(
            "--listen serves agents over TCP, which requires mutual TLS: give --tls-cert, "
            "--tls-key and --tls-client-ca (create them with `ozwald ca init` and "
            "`ozwald ca issue`)"
        )
    for flag, value in (
        ("--heartbeat-interval", args.heartbeat_interval),
        ("--heartbeat-ttl", args.heartbeat_ttl),
        ("--reschedule-grace", args.reschedule_grace),
        ("--drift-grace", args.drift_grace),
        ("--restart-grace", args.restart_grace),
    ):
        if not value > 0:
            parser.error(f"{flag} {value:g}: give a positive number of seconds")
    if args.heartbeat_ttl <= args.heartbeat_interval:
        parser.error(
            f"--heartbeat-ttl {args.heartbeat_ttl:g} must exceed --heartbeat-interval "
            f"{args.heartbeat_interval:g}, or every host would flap; e.g. three intervals"
        )
    socket_path = args.socket.absolute()
    if (problem := socket_path_problem(socket_path)) is not None:
        parser.error(problem)
    socket_gid = None
    if args.socket_group is not None:
        try:
            socket_gid = grp.getgrnam(args.socket_group).gr_gid
        except KeyError:
            parser.error(f"--socket-group {args.socket_group!r}: no such group")
    try:
        StrategyRegistry.discover().load(args.strategy)
    except StrategyLoadError as e:
        parser.error(f"--strategy {args.strategy}: {e}")
    settings = FleetSettings(
        health=HealthSettings(
            heartbeat_interval_s=args.heartbeat_interval,
            heartbeat_ttl_s=args.heartbeat_ttl,
            reschedule_grace_s=args.reschedule_grace,
        ),
        strategy=args.strategy,
        drift_grace_s=args.drift_grace,
        restart_grace_s=args.restart_grace,
    )
    tcp = TlsListener(args.listen, *tls) if args.listen else None
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        return asyncio.run(
            _serve(args.state_dir.absolute(), socket_path, socket_gid, tcp, settings)
        )
    except _Refused as e:
        print(f"ozwald-orchestrator: error: {e.message}", file=sys.stderr)
        print(f"ozwald-orchestrator: hint: {e.remedy}", file=sys.stderr)
        return e.code


async def _serve(
    state_dir: Path,
    socket_path: Path,
    socket_gid: int | None,
    tcp: TlsListener | None,
    settings: FleetSettings,
) -> int:
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    socket_path.parent.mkdir(
        parents=True, exist_ok=True, mode=0o755 if os.geteuid() == 0 else 0o700
    )
    with contextlib.ExitStack() as cleanup:
        _lock(cleanup, state_dir / "orchestrator.lock", f"the state directory {state_dir}")
        _lock(cleanup, Path(f"{socket_path}.lock"), f"the socket {socket_path}")
        try:
            prepare_socket_path(socket_path)
        except (SocketInUseError, NotASocketError) as e:
            raise _Refused(
                EXIT_IN_USE, str(e), "stop that process or choose another --socket"
            ) from e
        try:
            store = SqliteFleetStore(state_dir / STORE_FILE)
        except (sqlite3.Error, StoreVersionError, OSError) as e:
            raise _Refused(
                EXIT_STORE,
                f"cannot open the store {state_dir / STORE_FILE}: {e}",
                "check the file and its permissions, or run the orchestrator version that wrote it",
            ) from e
        cleanup.callback(store.close)
        clock = SystemClock()
        try:
            audit = AuditLog(state_dir / STORE_FILE, now=clock.now)
        except (sqlite3.Error, AuditSchemaError, OSError) as e:
            raise _Refused(
                EXIT_STORE,
                f"cannot open the audit log in {state_dir / STORE_FILE}: {e}",
                "check the file and its permissions, or run the orchestrator version that wrote it",
            ) from e
        # Closed after the fleet stopped (the stack unwinds in reverse): close() commits
        # what is queued and writes the head checkpoint.
        cleanup.callback(audit.close)
        fleet = Fleet(store, settings, clock, audit=audit)
        server = OrchestratorServer(fleet, socket_path, tcp, socket_gid)
        try:
            await server.start()
        except TlsMaterialError as e:
            await server.stop(0)
            raise _Refused(
                EXIT_LISTEN,
                str(e),
                "give the orchestrator's certificate and key (`ozwald ca issue`) and the CA "
                "that signs agents' and operators' certificates",
            ) from e
        except (ListenError, PermissionError) as e:
            await server.stop(0)
            raise _Refused(
                EXIT_LISTEN, str(e), "check the address and that this user may bind it"
            ) from e
        cleanup.callback(socket_path.unlink, missing_ok=True)
        port_file = state_dir / PORT_FILE
        if server.tcp_port is not None:
            port_file.write_text(f"{server.tcp_port}\n")
            cleanup.callback(port_file.unlink, missing_ok=True)
        fleet.start()
        logger.info(
            "orchestrator serving on unix://%s%s (strategy %s)",
            socket_path,
            f" and {tcp.address} as port {server.tcp_port} (mutual TLS)" if tcp else "",
            settings.strategy,
            extra={"tcp_port": server.tcp_port, "state_dir": str(state_dir)},
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, _request_stop, stop, signum)
        await stop.wait()
        await server.stop()
        await fleet.stop()
        logger.info("orchestrator stopped")
    return EXIT_OK


def _request_stop(stop: asyncio.Event, signum: int) -> None:
    logger.info("received %s, shutting down", signal.Signals(signum).name)
    stop.set()


def _lock(cleanup: contextlib.ExitStack, path: Path, what: str) -> None:
    lock = ExclusiveLock(path)
    try:
        lock.acquire()
    except LockHeldError as e:
        holder = (
            f"another orchestrator (pid {e.holder_pid})" if e.holder_pid else "another orchestrator"
        )
        raise _Refused(
            EXIT_IN_USE,
            f"{holder} already uses {what}",
            "stop it first, or give this one its own --state-dir and --socket",
        ) from e
    cleanup.callback(lock.release)


if __name__ == "__main__":
    sys.exit(main())
