"""The secrets endpoint: short-lived per-container tokens and an HTTP-over-unix-socket server.

For a service with `secrets_delivery: endpoint` (or `both`), the agent mints a random
token scoped to that realm, service, container and its lockers (at their admitted
revisions), writes it to the container's `/run/secrets/.ozwald-token`, and mounts the
directory holding the agent's socket read-only at `/run/ozwald-secrets`. The container
asks `GET /v1/secrets/<locker>/<name>` with `Authorization: Bearer <token>`.

One socket per agent, not per container: the token, not the socket, says who calls, so
one listener serves any number of containers, and because the *directory* is mounted
(not the socket file) a restarted agent's new socket is reachable from containers it
adopts. The price: a token leaked out of one container works from another container of
the same agent until it expires or is revoked (docs/security/threat-model-secrets.md).

Tokens live only in the agent's memory, stored as their SHA-256: a restarted agent
re-mints one for each container it adopts (the old ones are gone). They expire after
`ttl_s`; the agent writes a fresh one into the file at half-life (the previous one stays
valid until its own expiry, so a reader never races the rotation), and revokes all of a
container's tokens when it stops or is removed, and every token when the agent stops.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import logging
import os
import re
import secrets
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ozwald_agent.secrets.errors import SecretNotFoundError, VaultError

logger = logging.getLogger(__name__)

DEFAULT_TOKEN_TTL_S = 900.0
SOCKET_NAME = "agent.sock"
MOUNT_TARGET = "/run/ozwald-secrets"
TOKEN_FILE = ".ozwald-token"
SOCKET_ENV = "OZWALD_SECRETS_SOCKET"
TOKEN_FILE_ENV = "OZWALD_SECRETS_TOKEN_FILE"
_PATH = re.compile(r"^/v1/secrets/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)$")


class EndpointVault(Protocol):
    """What the endpoint needs of the vault (`ozwald_agent.secrets.vault.Vault` fits)."""

    def read_revision(self, realm: str, locker: str, revision: int) -> dict[str, bytes]: ...

    def audit(
        self,
        who: str,
        action: str,
        *,
        realm: str = "",
        locker: str = "",
        names: Collection[str] = (),
        outcome: str = "ok",
        correlation_id: str = "",
    ) -> None: ...


@dataclass(frozen=True)
class TokenScope:
    """What a token may read: the lockers (at their revisions) of one container."""

    realm: str
    service: str
    container: str
    lockers: Mapping[str, int] = field(default_factory=dict)

    @property
    def who(self) -> str:
        return f"container:{self.realm}/{self.service}/{self.container}"

    def to_json(self) -> str:
        return json.dumps(
            {
                "realm": self.realm,
                "service": self.service,
                "container": self.container,
                "lockers": dict(self.lockers),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> TokenScope:
        doc = json.loads(text)
        return cls(
            realm=str(doc["realm"]),
            service=str(doc["service"]),
            container=str(doc["container"]),
            lockers={str(k): int(v) for k, v in dict(doc["lockers"]).items()},
        )


@dataclass
class _Issued:
    scope: TokenScope
    minted_at: float
    expires_at: float


class TokenRegistry:
    """Tokens by their SHA-256 (the token itself is never kept). Thread-safe."""

    def __init__(
        self, ttl_s: float = DEFAULT_TOKEN_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if ttl_s <= 0:
            raise ValueError("the token lifetime must be positive")
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, _Issued] = {}

    def mint(self, scope: TokenScope) -> str:
        token = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            self._drop_expired(now)
            self._tokens[_digest(token)] = _Issued(scope, now, now + self.ttl_s)
        return token

    def resolve(self, token: str) -> TokenScope | None:
        """The token's scope; None when unknown, expired or revoked."""
        with self._lock:
            issued = self._tokens.get(_digest(token))
            if issued is None or issued.expires_at <= self._clock():
                return None
            return issued.scope

    def revoke(self, container: str) -> int:
        with self._lock:
            gone = [k for k, v in self._tokens.items() if v.scope.container == container]
            for key in gone:
                del self._tokens[key]
            return len(gone)

    def revoke_all(self) -> None:
        with self._lock:
            self._tokens.clear()

    def containers(self) -> set[str]:
        with self._lock:
            return {v.scope.container for v in self._tokens.values()}

    def due(self) -> list[TokenScope]:
        """Scopes whose newest token is past half its life: time to write a fresh one."""
        now = self._clock()
        newest: dict[str, _Issued] = {}
        with self._lock:
            self._drop_expired(now)
            for issued in self._tokens.values():
                known = newest.get(issued.scope.container)
                if known is None or issued.minted_at > known.minted_at:
                    newest[issued.scope.container] = issued
        return [i.scope for i in newest.values() if now - i.minted_at >= self.ttl_s / 2]

    def _drop_expired(self, now: float) -> None:
        for key in [k for k, v in self._tokens.items() if v.expires_at <= now]:
            del self._tokens[key]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, path: str, endpoint: SecretsEndpoint) -> None:
        self.endpoint = endpoint
        super().__init__(path, _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    server_version = "ozwald-secrets"
    sys_version = ""
    protocol_version = "HTTP/1.0"
    # A client that opens a connection and sends nothing does not hold a thread for long.
    timeout = 10

    def do_GET(self) -> None:
        status, body, content_type = self.server.endpoint.answer(
            self.path, self.headers.get("Authorization", ""), _peer_pid(self.request)
        )
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        # The request line never carries the token (it is a header); keep it at debug.
        logger.debug("secrets endpoint: %s", format % args)


def _peer_pid(conn: object) -> int:
    try:
        assert isinstance(conn, socket.socket)
        raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        return int.from_bytes(raw[:4], "little")
    except (OSError, AssertionError):
        return 0


class SecretsEndpoint:
    """Serves `GET /v1/secrets/<locker>/<name>` on `directory/agent.sock`."""

    def __init__(self, directory: Path, vault: EndpointVault, tokens: TokenRegistry) -> None:
        self.directory = directory
        self.socket_path = directory / SOCKET_NAME
        self._vault = vault
        self.tokens = tokens
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o755)
        os.chmod(self.directory, 0o755)
        # Under the agent's state lock, whatever sits here is a previous agent's.
        self.socket_path.unlink(missing_ok=True)
        self._server = _Server(str(self.socket_path), self)
        # Any user of any container may connect: the token is the credential.
        os.chmod(self.socket_path, 0o666)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="secrets-endpoint", daemon=True
        )
        self._thread.start()
        logger.info("secrets endpoint serving on %s", self.socket_path)

    def stop(self) -> None:
        self.tokens.revoke_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.socket_path.unlink(missing_ok=True)

    def answer(self, path: str, authorization: str, peer_pid: int = 0) -> tuple[int, bytes, str]:
        """(HTTP status, body, content type) for one request; every attempt audited."""
        match = _PATH.match(path.split("?", 1)[0])
        if match is None:
            return 404, b"not found: ask GET /v1/secrets/<locker>/<name>\n", "text/plain"
        locker, name = match.group(1), match.group(2)
        scheme, _, token = authorization.partition(" ")
        scope = self.tokens.resolve(token.strip()) if scheme.lower() == "bearer" else None
        correlation = f"endpoint pid={peer_pid}" if peer_pid else "endpoint"
        if scope is None:
            self._vault.audit(
                "container:unknown",
                "fetch",
                locker=locker,
                names=[name],
                outcome="TOKEN_INVALID",
                correlation_id=correlation,
            )
            return 401, b"token missing, expired or revoked: re-read the token file\n", "text/plain"

        def audit(outcome: str = "ok") -> None:
            assert scope is not None
            self._vault.audit(
                scope.who,
                "fetch",
                realm=scope.realm,
                locker=locker,
                names=[name],
                outcome=outcome,
                correlation_id=correlation,
            )

        if locker not in scope.lockers:
            audit("LOCKER_NOT_GRANTED")
            return 403, f"this service was not given locker {locker!r}\n".encode(), "text/plain"
        try:
            values = self._vault.read_revision(scope.realm, locker, scope.lockers[locker])
            if name not in values:
                raise SecretNotFoundError(scope.realm, locker, name)
        except VaultError as e:
            audit(e.reason)
            status = 404 if isinstance(e, SecretNotFoundError) else 503
            return status, (e.message + "\n").encode(), "text/plain"
        audit()
        return 200, values[name], "application/octet-stream"
