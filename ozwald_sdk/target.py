"""Where the agent is: parse an address, pick up TLS material, check a socket before dialling.

Accepted addresses:

- `unix:///abs/path`, `unix:/abs/path`, `unix:relative/path`, or a bare path (absolute,
  or starting with `./`, `../` or `~`): the agent's unix socket; access is by file
  permissions.
- `host:port` or `[ipv6]:port`: TCP, which the agent serves only with mutual TLS, so a
  client CA, certificate and key are required (flags or OZWALD_TLS_CA / OZWALD_TLS_CERT /
  OZWALD_TLS_KEY). TLS settings are ignored for unix sockets.

With no address, OZWALD_AGENT is used, then the default socket (ozwald_sdk.paths).

The orchestrator's FleetService is addressed the same way (`resolve_orchestrator_target`):
OZWALD_ORCHESTRATOR, then its default socket; TCP needs the same mutual-TLS files, with
a certificate `ozwald ca issue --role operator` made.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from ozwald_sdk.errors import (
    AgentUnreachableError,
    ConnectionConfigError,
    OrchestratorUnreachableError,
    PermissionDeniedError,
    UnavailableError,
)
from ozwald_sdk.paths import default_agent_socket, default_orchestrator_socket

AGENT_ENV = "OZWALD_AGENT"
ORCHESTRATOR_ENV = "OZWALD_ORCHESTRATOR"
TLS_CA_ENV = "OZWALD_TLS_CA"
TLS_CERT_ENV = "OZWALD_TLS_CERT"
TLS_KEY_ENV = "OZWALD_TLS_KEY"

# sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
MAX_SOCKET_PATH_BYTES = 107

_ADDRESS_FORMS = "unix:///path/to/agent.sock, /path/to/agent.sock or host:port"


@dataclass(frozen=True)
class Peer:
    """Which Ozwald process a target reaches, for the words of errors about it."""

    name: str
    """How errors call it: "agent", "orchestrator"."""
    program: str
    """The command that runs it."""
    flag: str
    """The CLI option naming its address."""
    env: str
    """The variable naming its address."""
    start: str
    """How to start one, as a remedy."""
    listen: str
    """How it serves TCP, as a remedy."""
    default_socket: Callable[[], Path]
    unreachable: type[UnavailableError]
    socket_group_remedy: str


AGENT = Peer(
    name="agent",
    program="ozwald-agent",
    flag="--agent",
    env=AGENT_ENV,
    start="start one with `ozwald-agent` (or `make quickstart` in a source checkout)",
    listen="`ozwald-agent --listen HOST:PORT` with TLS",
    default_socket=default_agent_socket,
    unreachable=AgentUnreachableError,
    socket_group_remedy="ask the agent's operator to add you to the socket's group "
    "(ozwald-agent --socket-group GROUP), or run as the agent's user",
)
ORCHESTRATOR = Peer(
    name="orchestrator",
    program="ozwald-orchestrator",
    flag="--orchestrator",
    env=ORCHESTRATOR_ENV,
    start="start one with `ozwald-orchestrator` (docs/orchestrator.md)",
    listen="`ozwald-orchestrator --listen HOST:PORT` with TLS",
    default_socket=default_orchestrator_socket,
    unreachable=OrchestratorUnreachableError,
    socket_group_remedy="ask the orchestrator's operator to add you to the socket's group "
    "(ozwald-orchestrator --socket-group GROUP), or run as the orchestrator's user",
)


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for mutual TLS: the CA that signed the server, and this client's pair."""

    ca: Path
    cert: Path
    key: Path

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=_read_pem(self.ca, "CA certificate", "--tls-ca", TLS_CA_ENV),
            private_key=_read_pem(self.key, "client key", "--tls-key", TLS_KEY_ENV),
            certificate_chain=_read_pem(
                self.cert, "client certificate", "--tls-cert", TLS_CERT_ENV
            ),
        )


@dataclass(frozen=True)
class AgentTarget:
    """A parsed address of an agent (or, with `peer` ORCHESTRATOR, of an orchestrator);
    exactly one of `socket_path` and `tls` is set."""

    grpc_target: str
    display: str
    socket_path: Path | None = None
    tls: TlsFiles | None = None
    peer: Peer = field(default=AGENT, compare=False)

    @property
    def unreachable_remedy(self) -> str:
        peer = self.peer
        if self.socket_path is not None:
            return (
                f"{peer.start}, or point {peer.flag} / {peer.env} at a running {peer.name}'s socket"
            )
        article = "an" if peer.name[0] in "aeiou" else "a"
        return (
            f"check that {article} {peer.name} serves there ({peer.listen}), "
            "that a firewall lets you through, and that --tls-ca, --tls-cert and --tls-key "
            f"belong to that {peer.name}'s CA"
        )

    def check_socket(self) -> None:
        """Fail fast, before any call, when the unix socket cannot possibly answer.

        A missing socket means no agent: waiting for retries would only delay saying so.
        A socket that exists but refuses is left to the call and its bounded retries,
        since an agent may be restarting behind it.
        """
        if self.socket_path is None:
            return
        path = self.socket_path
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise self.peer.unreachable(
                f"no Ozwald {self.peer.name} answers at {self.display}: the socket does not exist",
                remedy=self.unreachable_remedy,
            ) from None
        except PermissionError as e:
            raise _permission_denied(path, e, self.peer) from e
        if not stat.S_ISSOCK(mode):
            raise ConnectionConfigError(
                f"{path} is not a unix socket, so no {self.peer.name} can be reached through it",
                remedy=f"point {self.peer.flag} / {self.peer.env} at the {self.peer.name}'s "
                f"socket (default {self.peer.default_socket()})",
            )
        # Connecting to a unix socket needs write permission on it.
        if not os.access(path, os.W_OK, effective_ids=True):
            raise _permission_denied(
                path, PermissionError(f"no write permission on {path}"), self.peer
            )


def resolve_target(
    address: str | None = None,
    *,
    tls_ca: Path | None = None,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    environ: Mapping[str, str] | None = None,
    peer: Peer = AGENT,
) -> AgentTarget:
    """The agent to dial: `address`, else $OZWALD_AGENT, else the default socket.

    TLS paths not given fall back to OZWALD_TLS_CA / OZWALD_TLS_CERT / OZWALD_TLS_KEY.
    Raises ConnectionConfigError for an address that cannot be parsed and for TCP
    without the full set of TLS files. With `peer` ORCHESTRATOR the variable and default
    socket are the orchestrator's (see resolve_orchestrator_target).
    """
    env = os.environ if environ is None else environ
    text = address if address is not None else env.get(peer.env, "")
    if not text.strip():
        return _unix_target(peer.default_socket(), peer)
    text = text.strip()
    socket_path = _socket_path(text, peer)
    if socket_path is not None:
        return _unix_target(socket_path, peer)
    host, port = _host_port(text, peer)
    tls = _tls_files(
        text,
        peer,
        ca=tls_ca or _env_path(env, TLS_CA_ENV),
        cert=tls_cert or _env_path(env, TLS_CERT_ENV),
        key=tls_key or _env_path(env, TLS_KEY_ENV),
    )
    grpc_target = f"{host}:{port}"
    return AgentTarget(grpc_target=grpc_target, display=grpc_target, tls=tls, peer=peer)


def resolve_orchestrator_target(
    address: str | None = None,
    *,
    tls_ca: Path | None = None,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> AgentTarget:
    """The orchestrator to dial: `address`, else $OZWALD_ORCHESTRATOR, else its default
    socket (/run/ozwald/orchestrator.sock as root, else $XDG_RUNTIME_DIR/ozwald/...).
    TCP needs mutual TLS with an operator certificate, as for the agent."""
    return resolve_target(
        address,
        tls_ca=tls_ca,
        tls_cert=tls_cert,
        tls_key=tls_key,
        environ=environ,
        peer=ORCHESTRATOR,
    )


def _socket_path(text: str, peer: Peer) -> Path | None:
    if text.startswith("unix://"):
        rest = text.removeprefix("unix://")
        if not rest.startswith("/"):
            raise ConnectionConfigError(
                f"cannot use {peer.name} address {text!r}: unix:// must be followed by an "
                "absolute path (three slashes in all)",
                remedy=f"write unix:///abs/path or unix:relative/path; forms: {_ADDRESS_FORMS}",
            )
        return Path(rest)
    if text.startswith("unix:") and len(text) > len("unix:"):
        return Path(text.removeprefix("unix:")).absolute()
    if text.startswith(("/", "./", "../", "~")):
        return Path(text).expanduser().absolute()
    return None


def _unix_target(path: Path, peer: Peer) -> AgentTarget:
    if len(os.fsencode(path)) > MAX_SOCKET_PATH_BYTES:
        raise ConnectionConfigError(
            f"the socket path {path} is {len(os.fsencode(path))} bytes long; unix sockets "
            f"allow at most {MAX_SOCKET_PATH_BYTES}",
            remedy=f"give the {peer.name} and this client a shorter --socket path",
        )
    return AgentTarget(
        grpc_target=f"unix:{path}", display=f"unix://{path}", socket_path=path, peer=peer
    )


def _host_port(text: str, peer: Peer) -> tuple[str, int]:
    host, sep, port_text = text.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    if not sep or not host or ("[" in host and not bracketed) or "/" in host:
        raise ConnectionConfigError(
            f"cannot use {peer.name} address {text!r}",
            remedy=f"write one of: {_ADDRESS_FORMS}",
        )
    if ":" in host and not bracketed:
        raise ConnectionConfigError(
            f"cannot use {peer.name} address {text!r}: an IPv6 host needs brackets",
            remedy="write it as [ADDRESS]:PORT, e.g. [::1]:7443",
        )
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConnectionConfigError(
            f"cannot use {peer.name} address {text!r}: {port_text!r} is not a TCP port (1-65535)",
            remedy=f"write one of: {_ADDRESS_FORMS}",
        )
    return host, int(port_text)


def _tls_files(
    address: str, peer: Peer, *, ca: Path | None, cert: Path | None, key: Path | None
) -> TlsFiles:
    if ca is not None and cert is not None and key is not None:
        return TlsFiles(ca=ca, cert=cert, key=key)
    missing = [
        f"{flag} ({env})"
        for value, flag, env in (
            (ca, "--tls-ca", TLS_CA_ENV),
            (cert, "--tls-cert", TLS_CERT_ENV),
            (key, "--tls-key", TLS_KEY_ENV),
        )
        if value is None
    ]
    raise ConnectionConfigError(
        f"cannot reach the {peer.name} at {address} over TCP without TLS: the {peer.name} "
        "accepts TCP clients only with mutual TLS, and "
        + ", ".join(missing)
        + (" is" if len(missing) == 1 else " are")
        + " not set",
        remedy=f"give the CA that signed the {peer.name}'s certificate and this client's "
        "certificate and key with --tls-ca, --tls-cert and --tls-key (or the OZWALD_TLS_* "
        f"variables); on the {peer.name}'s own host, use its unix socket instead",
    )


def _env_path(env: Mapping[str, str], name: str) -> Path | None:
    value = env.get(name, "").strip()
    return Path(value).expanduser() if value else None


def _read_pem(path: Path, what: str, flag: str, env: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise ConnectionConfigError(
            f"cannot read the TLS {what} {path}: {e.strerror or e}",
            remedy=f"check the path given by {flag} / {env} and that this user may read it",
        ) from e


def _permission_denied(path: Path, error: OSError, peer: Peer) -> PermissionDeniedError:
    return PermissionDeniedError(
        f"this user may not use the {peer.name}'s socket {path}: {error.strerror or error}",
        remedy=peer.socket_group_remedy,
    )
