"""The secrets endpoint without Docker: its token registry (scopes, expiry, refresh at
half-life, revocation) on an injected clock, and its answers (200/401/403/404/503) with
the audit records they leave, against a small in-memory vault."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ozwald_agent.secrets.endpoint import SecretsEndpoint, TokenRegistry, TokenScope
from ozwald_agent.secrets.errors import SecretNotFoundError, VaultLockedError
from tests.support.short_paths import short_tmpdir

TTL = 100.0
VALUE = b"s3cr3t-value"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class AuditRecord:
    who: str
    action: str
    realm: str
    locker: str
    names: tuple[str, ...]
    outcome: str
    correlation_id: str


@dataclass
class FakeVault:
    """Fits `EndpointVault`: lockers by (realm, locker, revision), and the audit it got."""

    revisions: dict[tuple[str, str, int], dict[str, bytes]] = field(default_factory=dict)
    locked: bool = False
    records: list[AuditRecord] = field(default_factory=list)

    def read_revision(self, realm: str, locker: str, revision: int) -> dict[str, bytes]:
        if self.locked:
            raise VaultLockedError("the agent's vault is locked")
        try:
            return dict(self.revisions[(realm, locker, revision)])
        except KeyError:
            raise SecretNotFoundError(realm, locker) from None

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
    ) -> None:
        self.records.append(
            AuditRecord(who, action, realm, locker, tuple(names), outcome, correlation_id)
        )


def scope(container: str = "ozwald-shop-api", **lockers: int) -> TokenScope:
    return TokenScope("shop", "api", container, lockers or {"db": 2})


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tokens(clock: Clock) -> TokenRegistry:
    return TokenRegistry(TTL, clock=clock)


@pytest.fixture
def vault() -> FakeVault:
    return FakeVault(
        revisions={
            ("shop", "db", 1): {"password": b"old-value"},
            ("shop", "db", 2): {"password": VALUE, "user": b"app"},
            ("shop", "stripe", 1): {"key": b"sk"},
        }
    )


@pytest.fixture
def endpoint(tmp_path: Path, vault: FakeVault, tokens: TokenRegistry) -> SecretsEndpoint:
    return SecretsEndpoint(tmp_path / ".endpoint", vault, tokens)


# The registry


def test_a_minted_token_resolves_to_its_scope_and_is_not_stored_in_clear(
    tokens: TokenRegistry,
) -> None:
    token = tokens.mint(scope(db=2, stripe=1))
    assert tokens.resolve(token) == TokenScope(
        "shop", "api", "ozwald-shop-api", {"db": 2, "stripe": 1}
    )
    assert token not in repr(vars(tokens))
    assert tokens.resolve("not-a-token") is None
    assert tokens.mint(scope()) != token  # random, never derived from the scope


def test_a_token_expires_after_its_lifetime(tokens: TokenRegistry, clock: Clock) -> None:
    token = tokens.mint(scope())
    clock.now += TTL - 0.001
    assert tokens.resolve(token) is not None
    clock.now += 0.001
    assert tokens.resolve(token) is None


def test_a_fresh_token_is_due_at_half_life_and_the_old_one_stays_valid_until_its_own_expiry(
    tokens: TokenRegistry, clock: Clock
) -> None:
    old = tokens.mint(scope())
    clock.now += TTL / 2 - 1
    assert tokens.due() == []
    clock.now += 1
    assert tokens.due() == [scope()]
    new = tokens.mint(tokens.due()[0])
    assert tokens.due() == []  # the newest token decides, not the oldest
    clock.now += TTL / 2 - 1  # just before the old one's expiry
    assert tokens.resolve(old) == tokens.resolve(new) == scope()
    clock.now += 1
    assert tokens.resolve(old) is None
    assert tokens.resolve(new) == scope()
    assert tokens.due() == [scope()]  # the new one is at its own half-life now


def test_revoking_a_container_revokes_all_its_tokens_and_only_its(
    tokens: TokenRegistry, clock: Clock
) -> None:
    first = tokens.mint(scope())
    clock.now += TTL / 2
    refreshed = tokens.mint(scope())
    other = tokens.mint(scope("ozwald-shop-worker"))
    assert tokens.revoke("ozwald-shop-api") == 2
    assert tokens.resolve(first) is None
    assert tokens.resolve(refreshed) is None
    assert tokens.resolve(other) == scope("ozwald-shop-worker")
    assert tokens.containers() == {"ozwald-shop-worker"}
    assert tokens.revoke("ozwald-shop-api") == 0


def test_revoke_all_leaves_no_token(tokens: TokenRegistry) -> None:
    issued = [tokens.mint(scope()), tokens.mint(scope("ozwald-shop-worker"))]
    tokens.revoke_all()
    assert [tokens.resolve(t) for t in issued] == [None, None]
    assert tokens.containers() == set()


@pytest.mark.parametrize("ttl", [0.0, -1.0])
def test_a_lifetime_that_is_not_positive_is_refused(ttl: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        TokenRegistry(ttl)


# The answers


def bearer(token: str) -> str:
    return f"Bearer {token}"


def test_a_granted_secret_is_answered_at_the_admitted_revision_and_audited_without_it(
    endpoint: SecretsEndpoint, tokens: TokenRegistry, vault: FakeVault
) -> None:
    token = tokens.mint(scope(db=2))
    assert endpoint.answer("/v1/secrets/db/password", bearer(token), peer_pid=4242) == (
        200,
        VALUE,
        "application/octet-stream",
    )
    assert vault.records == [
        AuditRecord(
            "container:shop/api/ozwald-shop-api",
            "fetch",
            "shop",
            "db",
            ("password",),
            "ok",
            "endpoint pid=4242",
        )
    ]
    # An older revision's value is what a token pinned to it reads.
    pinned = tokens.mint(scope("ozwald-shop-old", db=1))
    assert endpoint.answer("/v1/secrets/db/password", bearer(pinned))[1] == b"old-value"


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer ", "Bearer wrong", "Basic {token}", "{token}"],
    ids=["missing", "empty", "wrong", "other-scheme", "no-scheme"],
)
def test_an_unusable_token_is_401_and_audited_as_unknown(
    authorization: str, endpoint: SecretsEndpoint, tokens: TokenRegistry, vault: FakeVault
) -> None:
    token = tokens.mint(scope())
    status, body, _ = endpoint.answer("/v1/secrets/db/password", authorization.format(token=token))
    assert status == 401
    assert VALUE not in body
    (record,) = vault.records
    assert (record.who, record.locker, record.names, record.outcome) == (
        "container:unknown",
        "db",
        ("password",),
        "TOKEN_INVALID",
    )


def test_an_expired_or_revoked_token_is_401(
    endpoint: SecretsEndpoint, tokens: TokenRegistry, clock: Clock
) -> None:
    expiring = tokens.mint(scope())
    revoked = tokens.mint(scope("ozwald-shop-worker"))
    clock.now += TTL
    assert endpoint.answer("/v1/secrets/db/password", bearer(expiring))[0] == 401
    tokens.revoke("ozwald-shop-worker")
    assert endpoint.answer("/v1/secrets/db/password", bearer(revoked))[0] == 401


def test_a_locker_the_service_was_not_given_is_403(
    endpoint: SecretsEndpoint, tokens: TokenRegistry, vault: FakeVault
) -> None:
    token = tokens.mint(scope(db=2))
    status, body, _ = endpoint.answer("/v1/secrets/stripe/key", bearer(token))
    assert (status, body) == (403, b"this service was not given locker 'stripe'\n")
    assert [(r.who, r.locker, r.outcome) for r in vault.records] == [
        ("container:shop/api/ozwald-shop-api", "stripe", "LOCKER_NOT_GRANTED")
    ]


def test_a_missing_name_is_404_and_a_locked_vault_503(
    endpoint: SecretsEndpoint, tokens: TokenRegistry, vault: FakeVault
) -> None:
    token = tokens.mint(scope(db=2))
    status, body, _ = endpoint.answer("/v1/secrets/db/nope", bearer(token))
    assert status == 404
    assert b"nope" in body
    vault.locked = True
    status, body, _ = endpoint.answer("/v1/secrets/db/password", bearer(token))
    assert (status, body) == (503, b"the agent's vault is locked\n")
    assert [r.outcome for r in vault.records] == ["SECRET_NOT_FOUND", "VAULT_LOCKED"]
    assert {r.who for r in vault.records} == {"container:shop/api/ozwald-shop-api"}


@pytest.mark.parametrize("path", ["/", "/v1/secrets/db", "/v1/secrets/db/../x", "/v2/secrets/a/b"])
def test_a_path_that_names_no_secret_is_404_and_reads_nothing(
    path: str, endpoint: SecretsEndpoint, tokens: TokenRegistry, vault: FakeVault
) -> None:
    token = tokens.mint(scope())
    assert endpoint.answer(path, bearer(token))[0] == 404
    assert vault.records == []


def test_no_audit_record_holds_a_value_or_a_token(
    endpoint: SecretsEndpoint, tokens: TokenRegistry, vault: FakeVault
) -> None:
    token = tokens.mint(scope(db=2))
    for path in ("/v1/secrets/db/password", "/v1/secrets/db/user", "/v1/secrets/stripe/key"):
        endpoint.answer(path, bearer(token))
    endpoint.answer("/v1/secrets/db/password", bearer(token + "x"))
    assert len(vault.records) == 4
    text = repr(vault.records)
    assert token not in text
    assert VALUE.decode() not in text


# Over its unix socket


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("agent", timeout=5)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(str(self._path))


def _get(path: Path, url: str, token: str) -> tuple[int, bytes, str]:
    conn = _UnixConnection(path)
    try:
        conn.request("GET", url, headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        return response.status, response.read(), response.getheader("Cache-Control", "")
    finally:
        conn.close()


@pytest.fixture
def served(vault: FakeVault, tokens: TokenRegistry) -> Iterator[SecretsEndpoint]:
    with short_tmpdir() as directory:
        endpoint = SecretsEndpoint(directory / ".endpoint", vault, tokens)
        endpoint.start()
        try:
            yield endpoint
        finally:
            endpoint.stop()


def test_the_socket_serves_any_caller_and_stopping_revokes_every_token(
    served: SecretsEndpoint, tokens: TokenRegistry, vault: FakeVault
) -> None:
    assert served.socket_path.stat().st_mode & 0o777 == 0o666
    token = tokens.mint(scope())
    assert _get(served.socket_path, "/v1/secrets/db/password", token) == (200, VALUE, "no-store")
    assert _get(served.socket_path, "/v1/secrets/stripe/key", token)[0] == 403
    (ok, _) = vault.records
    assert ok.correlation_id.startswith("endpoint pid=")  # the caller's pid, from the socket
    served.stop()
    assert not served.socket_path.exists()
    assert tokens.resolve(token) is None
