"""`ozwald-agent`: the per-host daemon's command line.

Exit codes: 0 stopped cleanly (SIGTERM/SIGINT), 1 unexpected failure, 2 bad usage,
3 another agent already owns the socket or state directory, 4 a listener could not
be opened, 5 a hardware snapshot could not be read or written, 6 the vault passphrase
file could not be read or does not open the vault, 10 the --config file is invalid,
11 admission refused its persistent services (nothing was started).
"""

from __future__ import annotations

import argparse
import faulthandler
import functools
import grp
import json
import logging
import math
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from ozwald_agent.daemon import AgentDaemon, AgentInUseError, DaemonConfig
from ozwald_agent.fleet.address import parse_orchestrator_address
from ozwald_agent.fleet.config import FleetLinkConfig
from ozwald_agent.fleet.identity import FleetIdentityError, expiry_problem, load_credentials
from ozwald_agent.fleet.labels import parse_host_labels
from ozwald_agent.hardware.profile import collect_host_profile
from ozwald_agent.hardware.snapshot import load_snapshot, record_snapshot
from ozwald_agent.persistent_services import persistent_specs
from ozwald_agent.provisioning.provisioner import AdmissionRefusedError
from ozwald_agent.runtime.errors import InvalidSpecError
from ozwald_agent.runtime.naming import DEFAULT_PREFIX, check_name
from ozwald_agent.runtime.secret_files import DEFAULT_BASE as DEFAULT_SECRETS_DIR
from ozwald_agent.secrets.agent_vault import VaultUnlockError
from ozwald_agent.secrets.backends import BACKENDS, DEFAULT_KEYRING_SERVICE, VaultBackendConfig
from ozwald_agent.secrets.endpoint import DEFAULT_TOKEN_TTL_S
from ozwald_agent.servicer import ProfileCollector
from ozwald_agent.volumes.agent_volumes import DEFAULT_RUN_DIR as DEFAULT_VOLUMES_DIR
from ozwald_sdk.errors import ConfigInvalidError
from ozwald_sdk.logs import add_logging_options, configure_logging
from ozwald_sdk.paths import default_agent_socket, default_agent_state_dir
from ozwald_sdk.process.listeners import ListenError, TlsListener, socket_path_problem
from ozwald_sdk.process.unix_socket import NotASocketError, SocketInUseError
from ozwald_sdk.version import ozwald_version

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_IN_USE = 3
EXIT_LISTEN = 4
EXIT_SNAPSHOT = 5
EXIT_VAULT = 6
EXIT_CONFIG_INVALID = 10
EXIT_PERSISTENT_REFUSED = 11


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ozwald-agent",
        description="Ozwald's per-host agent over gRPC: host profiling, admission, "
        "provisioning, service profiling, secrets, encrypted volumes and webhooks.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {ozwald_version()}")
    parser.add_argument(
        "--socket",
        type=Path,
        default=default_agent_socket(),
        help="unix socket to serve on (default: %(default)s)",
    )
    parser.add_argument(
        "--socket-group",
        metavar="GROUP",
        help="group that owns the socket; its members may use the agent (mode 0660)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=default_agent_state_dir(),
        help="directory for the agent's state (default: %(default)s)",
    )
    parser.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="also serve over TCP; requires --tls-cert, --tls-key and --tls-client-ca",
    )
    parser.add_argument("--tls-cert", type=Path, help="server certificate (PEM) for --listen")
    parser.add_argument("--tls-key", type=Path, help="server private key (PEM) for --listen")
    parser.add_argument(
        "--tls-client-ca", type=Path, help="CA (PEM) that must have signed every client"
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="ozwald.yml whose persistent services start with the agent (and stay running "
        "whatever update_services does)",
    )
    parser.add_argument(
        "--vault-passphrase-file",
        type=Path,
        metavar="FILE",
        help="unlock the vault at start with the passphrase in FILE (one line; keep it 0400); "
        "without it the vault stays locked until `ozwald secrets unlock`",
    )
    parser.add_argument(
        "--vault-backend",
        choices=BACKENDS,
        default="passphrase",
        help="what wraps the vault's data keys (default: %(default)s); keyring and aws-kms "
        "open the vault at start without a passphrase (docs/secrets.md)",
    )
    parser.add_argument(
        "--vault-keyring-service",
        default=DEFAULT_KEYRING_SERVICE,
        help="keyring backend: the OS keyring service name of the vault's root key; the "
        "user is the agent id (default: %(default)s)",
    )
    parser.add_argument(
        "--vault-kms-key-id",
        default="",
        metavar="KEY",
        help="aws-kms backend: the KMS key (id, ARN or alias/NAME) that wraps data keys",
    )
    parser.add_argument(
        "--vault-kms-region", default="", help="aws-kms backend: the region (default: boto3's)"
    )
    parser.add_argument(
        "--vault-kms-endpoint-url",
        default="",
        metavar="URL",
        help="aws-kms backend: a KMS endpoint other than AWS's (default: boto3's, which "
        "also reads AWS_ENDPOINT_URL)",
    )
    parser.add_argument(
        "--secrets-token-ttl",
        type=float,
        default=DEFAULT_TOKEN_TTL_S,
        metavar="SECONDS",
        help="lifetime of a container's secrets-endpoint token; the agent writes a fresh "
        "one at half-life (default: %(default)s)",
    )
    parser.add_argument(
        "--secrets-dir",
        type=Path,
        default=DEFAULT_SECRETS_DIR,
        help="tmpfs directory for containers' secret files (default: %(default)s; mounted "
        "as a private tmpfs when it is not one and the agent is root)",
    )
    parser.add_argument(
        "--volumes-dir",
        type=Path,
        default=DEFAULT_VOLUMES_DIR,
        help="directory for the plaintext mount points of encrypted volumes "
        "(default: %(default)s; see docs/volumes.md)",
    )
    fleet = parser.add_argument_group(
        "fleet", 'join an orchestrator (docs/agent.md, "Joining a fleet")'
    )
    fleet.add_argument(
        "--orchestrator",
        metavar="HOST:PORT",
        help="join the orchestrator there over mutual TLS; requires --fleet-cert, "
        "--fleet-key and --fleet-ca",
    )
    fleet.add_argument(
        "--fleet-cert",
        type=Path,
        metavar="FILE",
        help="this agent's client certificate (PEM, from `ozwald ca issue`): its common name "
        "is the host id, its role (OU) must be agent",
    )
    fleet.add_argument("--fleet-key", type=Path, metavar="FILE", help="its private key (PEM)")
    fleet.add_argument(
        "--fleet-ca",
        type=Path,
        metavar="FILE",
        help="CA certificate (PEM) that signed the orchestrator's server certificate",
    )
    fleet.add_argument(
        "--host-label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a label of this host that placement constraints match (repeatable)",
    )
    parser.add_argument(
        "--container-prefix",
        default=DEFAULT_PREFIX,
        metavar="PREFIX",
        help="first part of every container and network name (default: %(default)s); "
        "agents sharing one Docker Engine each need their own",
    )
    parser.add_argument(
        "--hardware-snapshot",
        type=Path,
        metavar="FILE",
        help="report the GPUs recorded in FILE instead of this host's (simulated hosts)",
    )
    add_logging_options(parser)
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", help="omit to run the agent"
    )
    record = commands.add_parser(
        "record-hardware", help="record this host's GPU libraries' answers to a JSON snapshot"
    )
    record.add_argument("output", type=Path, help="file to write ('-' for stdout)")
    record.add_argument(
        "--description", default="", help="what this host is, stored in the snapshot"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    if args.command == "record-hardware":
        if args.hardware_snapshot:
            parser.error("record-hardware records this host; it takes no --hardware-snapshot")
        return _record_hardware(args.output, args.description)
    tls = (args.tls_cert, args.tls_key, args.tls_client_ca)
    if args.listen is None and any(tls):
        parser.error("--tls-cert, --tls-key and --tls-client-ca only make sense with --listen")
    if args.listen is not None and not all(tls):
        parser.error(
            "--listen serves over TCP, which requires mutual TLS: give --tls-cert, "
            "--tls-key and --tls-client-ca (for local use, the unix socket needs none)"
        )
    if not (math.isfinite(args.secrets_token_ttl) and args.secrets_token_ttl > 0):
        parser.error(
            f"--secrets-token-ttl {args.secrets_token_ttl:g}: a token must live a positive, "
            f"finite number of seconds; give e.g. {DEFAULT_TOKEN_TTL_S:g} (the default)"
        )
    socket_path = args.socket.absolute()
    if (problem := socket_path_problem(socket_path)) is not None:
        parser.error(problem)
    try:
        check_name("prefix", args.container_prefix)
    except InvalidSpecError as e:
        parser.error(f"--container-prefix {args.container_prefix!r}: {e}")
    try:
        fleet = _fleet_config(args)
    except ValueError as e:
        parser.error(str(e))
    except FleetIdentityError as e:
        return _fail(EXIT_USAGE, e.message, e.remedy)
    socket_gid = None
    if args.socket_group is not None:
        try:
            socket_gid = grp.getgrnam(args.socket_group).gr_gid
        except KeyError:
            parser.error(
                f"--socket-group {args.socket_group!r}: no such group; create it "
                f"(groupadd {args.socket_group}) or name an existing one"
            )
    return _serve(args, socket_path, socket_gid, fleet)


def _fleet_config(args: argparse.Namespace) -> FleetLinkConfig | None:
    """The link to the orchestrator, its TLS files checked; ValueError for bad usage."""
    files = {
        "--fleet-cert": args.fleet_cert,
        "--fleet-key": args.fleet_key,
        "--fleet-ca": args.fleet_ca,
    }
    if args.orchestrator is None:
        given = [flag for flag, path in files.items() if path is not None]
        if args.host_label:
            given.append("--host-label")
        if given:
            raise ValueError(f"{', '.join(given)} only make sense with --orchestrator HOST:PORT")
        return None
    missing = [flag for flag, path in files.items() if path is None]
    if missing:
        raise ValueError(
            f"--orchestrator joins over mutual TLS, so it needs {', '.join(missing)}: the "
            "agent's certificate and key (`ozwald ca issue`) and the CA that signed the "
            "orchestrator's"
        )
    address = parse_orchestrator_address(args.orchestrator)
    labels = parse_host_labels(args.host_label)
    credentials = load_credentials(args.fleet_ca, args.fleet_cert, args.fleet_key)
    expired = expiry_problem(credentials)
    if expired is not None:
        # The host keeps being served; only the link waits for a renewal.
        logger.error("%s", expired)
    return FleetLinkConfig(
        address=address,
        ca=args.fleet_ca.absolute(),
        cert=args.fleet_cert.absolute(),
        key=args.fleet_key.absolute(),
        credentials=credentials,
        labels=labels,
    )


def _serve(
    args: argparse.Namespace,
    socket_path: Path,
    socket_gid: int | None,
    fleet: FleetLinkConfig | None,
) -> int:
    try:
        sources = load_snapshot(args.hardware_snapshot) if args.hardware_snapshot else None
    except (OSError, ValueError) as e:
        return _fail(
            EXIT_SNAPSHOT,
            f"cannot load hardware snapshot: {e}",
            "check the path, or record one with `ozwald-agent record-hardware FILE`",
        )
    config = DaemonConfig(
        socket_path=socket_path,
        state_dir=args.state_dir.absolute(),
        socket_gid=socket_gid,
        tcp=TlsListener(args.listen, args.tls_cert, args.tls_key, args.tls_client_ca)
        if args.listen
        else None,
        vault_passphrase_file=args.vault_passphrase_file,
        secrets_dir=args.secrets_dir.absolute(),
        volumes_dir=args.volumes_dir.absolute(),
        vault_backend=VaultBackendConfig(
            name=args.vault_backend,
            keyring_service=args.vault_keyring_service,
            kms_key_id=args.vault_kms_key_id,
            kms_region=args.vault_kms_region,
            kms_endpoint_url=args.vault_kms_endpoint_url,
        ),
        secrets_token_ttl_s=args.secrets_token_ttl,
        container_prefix=args.container_prefix,
        fleet=fleet,
    )
    collect = functools.partial(collect_host_profile, config.state_dir, sources=sources)
    daemon = AgentDaemon(config, collect)
    stop_requested = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("received %s, shutting down", signal.Signals(signum).name)
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    # `kill -USR1 PID` writes every thread's stack to the log: how to see where it hangs.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        daemon.start()
    except (AgentInUseError, SocketInUseError) as e:
        return _fail(
            EXIT_IN_USE,
            str(e),
            "stop that agent first, or give this one its own --socket and --state-dir",
        )
    except NotASocketError as e:
        return _fail(EXIT_IN_USE, str(e), "move that file away or choose another --socket")
    except VaultUnlockError as e:
        return _fail(EXIT_VAULT, e.message, e.remedy)
    except (ListenError, PermissionError) as e:
        return _fail(EXIT_LISTEN, str(e), "check the address and that this user may create it")
    if args.config is not None:
        code = _start_persistent(daemon, args.config, collect)
        if code != EXIT_OK:
            daemon.stop()
            return code
    daemon.join_fleet()
    while not stop_requested.wait(timeout=3600):
        pass
    daemon.stop()
    return EXIT_OK


def _start_persistent(daemon: AgentDaemon, config: Path, collect: ProfileCollector) -> int:
    try:
        specs = persistent_specs(config, collect())
        admitted = daemon.apply_persistent(specs)
    except ConfigInvalidError as e:
        return _fail(EXIT_CONFIG_INVALID, e.message, e.remedy)
    except AdmissionRefusedError as e:
        refusals = "; ".join(f"{r.realm}:{r.name}: {r.message}" for r in e.plan.refusals)
        return _fail(
            EXIT_PERSISTENT_REFUSED,
            f"persistent services refused, nothing started: {refusals}",
            "; ".join(dict.fromkeys(r.remedy for r in e.plan.refusals if r.remedy)),
        )
    logger.info(
        "persistent services admitted: %s",
        ", ".join(f"{a.realm}:{a.name}" for a in admitted.actions) or "none",
    )
    return EXIT_OK


def _record_hardware(output: Path, description: str) -> int:
    try:
        snapshot = record_snapshot(description=description)
        text = json.dumps(snapshot, indent=2, sort_keys=True) + "\n"
        if str(output) == "-":
            sys.stdout.write(text)
        else:
            output.write_text(text)
    except OSError as e:
        return _fail(
            EXIT_SNAPSHOT, f"cannot write snapshot: {e}", "check the path and its permissions"
        )
    return EXIT_OK


def _fail(code: int, message: str, remedy: str) -> int:
    print(f"ozwald-agent: error: {message}", file=sys.stderr)
    if remedy:
        print(f"ozwald-agent: hint: {remedy}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
