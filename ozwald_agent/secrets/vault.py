"""The agent's vault: per realm, named lockers of named secrets, encrypted at rest.

Model (see docs/secrets.md):

- A *locker* is a named set of secrets (name -> value) in one realm's vault. A service
  lists the lockers it needs and gets every secret of each as a file.
- Every change of a locker (set, import, delete) makes a new *revision*: a snapshot
  naming one *version* of each of its secrets. Services are admitted against a
  revision and keep it (a restart after a crash delivers the same values); old
  revisions are kept while a desired service still names them (`retire_unused`).
- Each locker has a random data key (AES-256-GCM); values are sealed with associated
  data binding realm, locker, name and version. Data keys are stored wrapped by the
  vault's `KeyWrapper` (today the scrypt-derived passphrase key). `rotate` makes a new
  data key and re-encrypts every kept value; values and revisions stay, so nothing that
  runs has to restart.
- Names, revisions and sizes are readable while the vault is locked (admission can say
  "locker missing" apart from "vault locked"); values never are.

Everything lives in one SQLite file (`STATE_DIR/vault.db`, mode 0600, WAL), including
the audit log, which records who did what when, never a value.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ozwald_agent.secrets.crypto import (
    DEFAULT_SCRYPT_N,
    DecryptionError,
    KdfParams,
    KeyWrapper,
    PassphraseKeyWrapper,
    context,
    derive_key,
    seal,
    unseal,
)
from ozwald_agent.secrets.errors import (
    InvalidSecretError,
    SecretNotFoundError,
    VaultLockedError,
    WrongPassphraseError,
)
from ozwald_agent.secrets.names import check_locker, check_realm, check_secret_name, check_value

FILE_MODE = 0o600
_VALUE_PURPOSE = "ozwald.vault.value.v1"
_DEK_CONTEXT = "ozwald.vault.locker"
_CHECK_CONTEXT = "ozwald.vault.check"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vault_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS lockers (
    realm TEXT NOT NULL, name TEXT NOT NULL, revision INTEGER NOT NULL,
    key_version INTEGER NOT NULL, updated_at REAL NOT NULL, deleted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (realm, name));
CREATE TABLE IF NOT EXISTS data_keys (
    realm TEXT NOT NULL, locker TEXT NOT NULL, key_version INTEGER NOT NULL,
    wrapped BLOB NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY (realm, locker, key_version));
CREATE TABLE IF NOT EXISTS secret_values (
    realm TEXT NOT NULL, locker TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL,
    key_version INTEGER NOT NULL, sealed BLOB NOT NULL, size INTEGER NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (realm, locker, name, version));
CREATE TABLE IF NOT EXISTS revisions (
    realm TEXT NOT NULL, locker TEXT NOT NULL, revision INTEGER NOT NULL, made_at REAL NOT NULL,
    PRIMARY KEY (realm, locker, revision));
CREATE TABLE IF NOT EXISTS revision_entries (
    realm TEXT NOT NULL, locker TEXT NOT NULL, revision INTEGER NOT NULL, name TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (realm, locker, revision, name));
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, who TEXT NOT NULL,
    action TEXT NOT NULL, realm TEXT NOT NULL, locker TEXT NOT NULL, names TEXT NOT NULL,
    outcome TEXT NOT NULL, correlation_id TEXT NOT NULL);
"""
AUDIT_KEPT = 100_000


@dataclass(frozen=True)
class SecretMeta:
    name: str
    version: int
    updated_at: float
    size: int


@dataclass(frozen=True)
class LockerState:
    realm: str
    name: str
    revision: int
    key_version: int
    updated_at: float
    secrets: tuple[SecretMeta, ...]


@dataclass(frozen=True)
class AuditRecord:
    at: float
    who: str
    action: str
    realm: str
    locker: str
    names: str
    outcome: str
    correlation_id: str


class Vault:
    """Thread-safe. Holds the unwrapping key in memory only while unlocked."""

    def __init__(
        self,
        path: Path,
        *,
        scrypt_n: int = DEFAULT_SCRYPT_N,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self._scrypt_n = scrypt_n
        self._clock = clock
        self._lock = threading.RLock()
        self._wrapper: KeyWrapper | None = None
        previous = os.umask(0o077)
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        finally:
            os.umask(previous)
        for suffix in ("", "-wal", "-shm"):
            candidate = Path(f"{path}{suffix}")
            if candidate.exists():
                os.chmod(candidate, FILE_MODE)

    def close(self) -> None:
        with self._lock:
            self._wrapper = None
            self._db.close()

    # -- lock state ------------------------------------------------------------------

    @property
    def exists(self) -> bool:
        return self._meta("check") is not None

    @property
    def unlocked(self) -> bool:
        return self._wrapper is not None

    @property
    def backend(self) -> str:
        """Which `KeyWrapper` wraps the data keys: passphrase, keyring or aws-kms."""
        raw = self._meta("backend")
        return "passphrase" if raw is None else raw.decode()

    def open_with(self, wrapper: KeyWrapper, *, create: bool = True) -> bool:
        """Opens the vault with a backend that needs no passphrase (keyring, KMS); True
        when this call created it. The vault remembers its backend: another one is refused."""
        with self._lock:
            if not self.exists:
                if not create:
                    raise VaultLockedError(
                        "this agent has no vault yet", "start the agent with its backend"
                    )
                _, check = wrapper.generate(context(_CHECK_CONTEXT))
                with self._transaction():
                    self._set_meta("backend", wrapper.backend.encode())
                    self._set_meta("check", check)
                self._wrapper = wrapper
                return True
            self._require_backend(wrapper.backend)
            stored = self._meta("check")
            assert stored is not None
            try:
                wrapper.unwrap(stored, context(_CHECK_CONTEXT))
            except DecryptionError as e:
                raise WrongPassphraseError(
                    f"the {wrapper.backend} backend's key does not open this agent's vault",
                    "give the agent the key the vault was created with (keyring entry, KMS key)",
                ) from e
            self._wrapper = wrapper
            return False

    def rewrap(self, to: KeyWrapper | None = None) -> int:
        """Re-wraps every data key, values untouched (nothing restarts); returns how many.

        Without `to`: under the backend's current key (KMS: ReEncrypt, e.g. after the KMS
        key was rotated or its alias moved). With `to` (keyring or aws-kms): moves the vault
        to that backend."""
        with self._lock:
            wrapper = self._require_unlocked()
            if to is not None and to.backend == "passphrase":
                raise InvalidSecretError(
                    "a vault moves to the passphrase backend through `ozwald secrets passphrase`",
                    field="backend",
                )
            rows = self._db.execute(
                "SELECT realm, locker, key_version, wrapped FROM data_keys"
            ).fetchall()
            with self._transaction():
                for realm, locker, key_version, wrapped in rows:
                    where = _dek_context(realm, locker, key_version)
                    rewrapped = (
                        wrapper.rewrap(wrapped, where)
                        if to is None
                        else to.wrap(wrapper.unwrap(wrapped, where), where)
                    )
                    self._db.execute(
                        "UPDATE data_keys SET wrapped = ? WHERE realm = ? AND locker = ? "
                        "AND key_version = ?",
                        (rewrapped, realm, locker, key_version),
                    )
                if to is not None:
                    _, check = to.generate(context(_CHECK_CONTEXT))
                    self._set_meta("backend", to.backend.encode())
                    self._set_meta("check", check)
                    self._db.execute("DELETE FROM vault_meta WHERE key = 'kdf'")
                    self._wrapper = to
            return len(rows)

    def unlock(self, passphrase: bytes, *, create: bool = False) -> bool:
        """Opens the vault; True when this call created it."""
        with self._lock:
            if self.exists:
                self._require_backend("passphrase")
            raw = self._meta("kdf")
            if raw is None:
                if not create:
                    raise VaultLockedError(
                        "this agent has no vault yet",
                        "create it with `ozwald secrets unlock --create` (passphrase on stdin)",
                    )
                params = KdfParams.fresh(self._scrypt_n)
                wrapper = PassphraseKeyWrapper(derive_key(passphrase, params))
                with self._transaction():
                    self._set_meta("kdf", params.to_json())
                    self._set_meta("check", wrapper.check_token())
                self._wrapper = wrapper
                return True
            self._wrapper = self._open(passphrase, KdfParams.from_json(raw))
            return False

    def lock(self) -> None:
        with self._lock:
            self._wrapper = None

    def change_passphrase(self, old: bytes, new: bytes) -> int:
        """Re-derives the key from `new` and re-wraps every data key; returns how many."""
        with self._lock:
            if self.exists:
                self._require_backend("passphrase")
            raw = self._meta("kdf")
            if raw is None:
                raise VaultLockedError("this agent has no vault yet", "create it first")
            old_wrapper = self._open(old, KdfParams.from_json(raw))
            params = KdfParams.fresh(self._scrypt_n)
            new_wrapper = PassphraseKeyWrapper(derive_key(new, params))
            rows = self._db.execute(
                "SELECT realm, locker, key_version, wrapped FROM data_keys"
            ).fetchall()
            with self._transaction():
                for realm, locker, key_version, wrapped in rows:
                    where = _dek_context(realm, locker, key_version)
                    key = old_wrapper.unwrap(wrapped, where)
                    self._db.execute(
                        "UPDATE data_keys SET wrapped = ? WHERE realm = ? AND locker = ? "
                        "AND key_version = ?",
                        (new_wrapper.wrap(key, where), realm, locker, key_version),
                    )
                self._set_meta("kdf", params.to_json())
                self._set_meta("check", new_wrapper.check_token())
            self._wrapper = new_wrapper
            return len(rows)

    # -- writing ---------------------------------------------------------------------

    def set(self, realm: str, locker: str, values: Mapping[str, bytes]) -> LockerState:
        realm, locker = check_realm(realm), check_locker(locker)
        if not values:
            raise InvalidSecretError("no secrets given", "give at least one NAME", field="values")
        for name, value in values.items():
            check_secret_name(name)
            check_value(name, value)
        with self._lock:
            wrapper = self._require_unlocked()
            now = self._clock()
            with self._transaction():
                row = self._locker_row(realm, locker, include_deleted=True)
                if row is None or row[3]:
                    key_version = self._new_locker(realm, locker, wrapper, now, existing=row)
                    entries: dict[str, int] = {}
                    revision = 0 if row is None else row[0]
                else:
                    revision, key_version = row[0], row[1]
                    entries = self._entries(realm, locker, revision)
                key = self._data_key(realm, locker, key_version, wrapper)
                for name, value in values.items():
                    version = self._next_version(realm, locker, name)
                    sealed = seal(key, value, _value_context(realm, locker, name, version))
                    self._db.execute(
                        "INSERT INTO secret_values VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (realm, locker, name, version, key_version, sealed, len(value), now),
                    )
                    entries[name] = version
                self._new_revision(realm, locker, revision + 1, entries, now)
            return self._state(realm, locker)

    def delete(self, realm: str, locker: str, names: Collection[str]) -> tuple[bool, list[str]]:
        """Deletes `names` (a new revision without them), or the whole locker when empty.

        Values a desired service still names stay stored until `retire_unused`."""
        realm, locker = check_realm(realm), check_locker(locker)
        with self._lock, self._transaction():
            row = self._locker_row(realm, locker)
            if row is None:
                raise SecretNotFoundError(realm, locker)
            revision = row[0]
            entries = self._entries(realm, locker, revision)
            if not names:
                self._db.execute(
                    "UPDATE lockers SET deleted = 1, updated_at = ? WHERE realm = ? AND name = ?",
                    (self._clock(), realm, locker),
                )
                return True, sorted(entries)
            for name in names:
                if name not in entries:
                    raise SecretNotFoundError(realm, locker, name)
            remaining = {n: v for n, v in entries.items() if n not in names}
            self._new_revision(realm, locker, revision + 1, remaining, self._clock())
            return False, sorted(names)

    def rotate(self, realm: str, locker: str) -> tuple[LockerState, int]:
        """A new data key for the locker; every kept value re-encrypted under it."""
        realm, locker = check_realm(realm), check_locker(locker)
        with self._lock:
            wrapper = self._require_unlocked()
            with self._transaction():
                row = self._locker_row(realm, locker)
                if row is None:
                    raise SecretNotFoundError(realm, locker)
                old_version = row[1]
                new_version = old_version + 1
                new_key, wrapped = wrapper.generate(_dek_context(realm, locker, new_version))
                self._db.execute(
                    "INSERT INTO data_keys VALUES (?, ?, ?, ?, ?)",
                    (realm, locker, new_version, wrapped, self._clock()),
                )
                old_keys: dict[int, bytes] = {}
                rows = self._db.execute(
                    "SELECT name, version, key_version, sealed FROM secret_values "
                    "WHERE realm = ? AND locker = ?",
                    (realm, locker),
                ).fetchall()
                for name, version, key_version, sealed in rows:
                    if key_version not in old_keys:
                        old_keys[key_version] = self._data_key(realm, locker, key_version, wrapper)
                    where = _value_context(realm, locker, name, version)
                    value = unseal(old_keys[key_version], sealed, where)
                    self._db.execute(
                        "UPDATE secret_values SET sealed = ?, key_version = ? WHERE realm = ? "
                        "AND locker = ? AND name = ? AND version = ?",
                        (seal(new_key, value, where), new_version, realm, locker, name, version),
                    )
                # Nothing is sealed under the old keys any more: they go.
                self._db.execute(
                    "DELETE FROM data_keys WHERE realm = ? AND locker = ? AND key_version < ?",
                    (realm, locker, new_version),
                )
                self._db.execute(
                    "UPDATE lockers SET key_version = ? WHERE realm = ? AND name = ?",
                    (new_version, realm, locker),
                )
            return self._state(realm, locker), len(rows)

    def retire_unused(self, in_use: Collection[tuple[str, str, int]]) -> int:
        """Drops revisions that are neither current nor named in `in_use` (realm, locker,
        revision), the values no kept revision names, and deleted lockers nobody uses.
        Returns how many revisions went."""
        keep = set(in_use)
        dropped = 0
        with self._lock, self._transaction():
            lockers = self._db.execute(
                "SELECT realm, name, revision, deleted FROM lockers"
            ).fetchall()
            for realm, locker, current, deleted in lockers:
                revisions = [
                    r
                    for (r,) in self._db.execute(
                        "SELECT revision FROM revisions WHERE realm = ? AND locker = ?",
                        (realm, locker),
                    )
                ]
                for revision in revisions:
                    if (revision == current and not deleted) or (realm, locker, revision) in keep:
                        continue
                    dropped += 1
                    for table in ("revisions", "revision_entries"):
                        self._db.execute(
                            f"DELETE FROM {table} WHERE realm = ? AND locker = ? AND revision = ?",
                            (realm, locker, revision),
                        )
                self._db.execute(
                    "DELETE FROM secret_values WHERE realm = ? AND locker = ? AND NOT EXISTS ("
                    "SELECT 1 FROM revision_entries e WHERE e.realm = secret_values.realm AND "
                    "e.locker = secret_values.locker AND e.name = secret_values.name AND "
                    "e.version = secret_values.version)",
                    (realm, locker),
                )
                if (
                    deleted
                    and not self._db.execute(
                        "SELECT 1 FROM revisions WHERE realm = ? AND locker = ?", (realm, locker)
                    ).fetchone()
                ):
                    for table, column in (("lockers", "name"), ("data_keys", "locker")):
                        self._db.execute(
                            f"DELETE FROM {table} WHERE realm = ? AND {column} = ?",
                            (realm, locker),
                        )
        return dropped

    # -- reading ---------------------------------------------------------------------

    def current_revision(self, realm: str, locker: str) -> int | None:
        """The locker's revision, None when it does not exist. Works while locked."""
        with self._lock:
            row = self._locker_row(realm, locker)
            return None if row is None else int(row[0])

    def lockers(self, realm: str = "", locker: str = "") -> list[LockerState]:
        """Names and metadata only. Works while locked."""
        with self._lock:
            query = "SELECT realm, name FROM lockers WHERE deleted = 0"
            args: list[str] = []
            if realm:
                query += " AND realm = ?"
                args.append(realm)
            if locker:
                query += " AND name = ?"
                args.append(locker)
            rows = self._db.execute(query + " ORDER BY realm, name", args).fetchall()
            return [self._state(r, n) for r, n in rows]

    def secret(self, realm: str, locker: str, name: str) -> SecretMeta:
        """One secret's metadata at the current revision. Works while locked."""
        realm = check_realm(realm)
        with self._lock:
            states = self.lockers(realm, locker)
            if not states:
                raise SecretNotFoundError(realm, locker)
            found = next((s for s in states[0].secrets if s.name == name), None)
            if found is None:
                raise SecretNotFoundError(realm, locker, name)
            return found

    def reveal(self, realm: str, locker: str, name: str) -> tuple[SecretMeta, bytes]:
        realm = check_realm(realm)
        with self._lock:
            meta = self.secret(realm, locker, name)
            wrapper = self._require_unlocked()
            return meta, self._value(realm, locker, name, meta.version, wrapper)

    def read_revision(self, realm: str, locker: str, revision: int) -> dict[str, bytes]:
        """Every secret of the locker at `revision` (current or kept), decrypted."""
        with self._lock:
            wrapper = self._require_unlocked()
            known = self._db.execute(
                "SELECT 1 FROM revisions WHERE realm = ? AND locker = ? AND revision = ?",
                (realm, locker, revision),
            ).fetchone()
            if known is None:
                raise SecretNotFoundError(realm, locker)
            entries = self._entries(realm, locker, revision)
            return {
                name: self._value(realm, locker, name, version, wrapper)
                for name, version in sorted(entries.items())
            }

    # -- audit -----------------------------------------------------------------------

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
        """Records an access; never give it a value."""
        with self._lock, self._transaction():
            self._db.execute(
                "INSERT INTO audit (at, who, action, realm, locker, names, outcome, "
                "correlation_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self._clock(),
                    who,
                    action,
                    realm,
                    locker,
                    ",".join(sorted(names)),
                    outcome,
                    correlation_id,
                ),
            )
            self._db.execute(
                "DELETE FROM audit WHERE id <= (SELECT MAX(id) FROM audit) - ?", (AUDIT_KEPT,)
            )

    def audit_records(self, realm: str = "", limit: int = 100) -> list[AuditRecord]:
        with self._lock:
            query = (
                "SELECT at, who, action, realm, locker, names, outcome, correlation_id FROM audit"
            )
            args: list[str | int] = []
            if realm:
                query += " WHERE realm = ?"
                args.append(realm)
            rows = self._db.execute(query + " ORDER BY id DESC LIMIT ?", [*args, limit]).fetchall()
            return [AuditRecord(*row) for row in reversed(rows)]

    # -- internals -------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        if self._db.in_transaction:
            yield
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _open(self, passphrase: bytes, params: KdfParams) -> PassphraseKeyWrapper:
        check = self._meta("check")
        wrapper = PassphraseKeyWrapper(derive_key(passphrase, params))
        try:
            if check is None:
                raise DecryptionError("no check token")
            wrapper.verify(check)
        except DecryptionError as e:
            raise WrongPassphraseError(
                "the passphrase does not open this agent's vault",
                "give the passphrase the vault was created (or last changed) with",
            ) from e
        return wrapper

    def _require_backend(self, backend: str) -> None:
        if self.backend != backend:
            raise VaultLockedError(
                f"this agent's vault uses the {self.backend} backend, not {backend}",
                f"start the agent with --vault-backend {self.backend}"
                + (
                    " and unlock it with `ozwald secrets unlock`"
                    if self.backend == "passphrase"
                    else ""
                ),
            )

    def _require_unlocked(self) -> KeyWrapper:
        if self._wrapper is None:
            if not self.exists:
                raise VaultLockedError(
                    "this agent has no vault yet",
                    "create it with `ozwald secrets unlock --create` (passphrase on stdin)",
                )
            raise VaultLockedError(
                "the agent's vault is locked",
                "unlock it with `ozwald secrets unlock` (passphrase on stdin), or start the "
                "agent with --vault-passphrase-file",
            )
        return self._wrapper

    def _meta(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM vault_meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def _set_meta(self, key: str, value: bytes) -> None:
        self._db.execute(
            "INSERT INTO vault_meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = ?",
            (key, value, value),
        )

    def _locker_row(
        self, realm: str, locker: str, *, include_deleted: bool = False
    ) -> tuple[int, int, float, int] | None:
        row = self._db.execute(
            "SELECT revision, key_version, updated_at, deleted FROM lockers "
            "WHERE realm = ? AND name = ?",
            (realm, locker),
        ).fetchone()
        if row is None or (row[3] and not include_deleted):
            return None
        return (int(row[0]), int(row[1]), float(row[2]), int(row[3]))

    def _new_locker(
        self,
        realm: str,
        locker: str,
        wrapper: KeyWrapper,
        now: float,
        existing: tuple[int, int, float, int] | None,
    ) -> int:
        # A deleted locker set again keeps counting revisions and key versions, so a
        # revision number never names two different snapshots.
        key_version = 1 if existing is None else existing[1] + 1
        _, wrapped = wrapper.generate(_dek_context(realm, locker, key_version))
        self._db.execute(
            "INSERT INTO data_keys VALUES (?, ?, ?, ?, ?)",
            (realm, locker, key_version, wrapped, now),
        )
        self._db.execute(
            "INSERT INTO lockers VALUES (?, ?, ?, ?, ?, 0) ON CONFLICT(realm, name) DO UPDATE "
            "SET key_version = excluded.key_version, deleted = 0",
            (realm, locker, 0 if existing is None else existing[0], key_version, now),
        )
        return key_version

    def _data_key(self, realm: str, locker: str, key_version: int, wrapper: KeyWrapper) -> bytes:
        row = self._db.execute(
            "SELECT wrapped FROM data_keys WHERE realm = ? AND locker = ? AND key_version = ?",
            (realm, locker, key_version),
        ).fetchone()
        if row is None:
            raise DecryptionError(f"no data key {key_version} for locker {realm}/{locker}")
        return wrapper.unwrap(bytes(row[0]), _dek_context(realm, locker, key_version))

    def _next_version(self, realm: str, locker: str, name: str) -> int:
        row = self._db.execute(
            "SELECT MAX(version) FROM secret_values WHERE realm = ? AND locker = ? AND name = ?",
            (realm, locker, name),
        ).fetchone()
        return int(row[0] or 0) + 1

    def _entries(self, realm: str, locker: str, revision: int) -> dict[str, int]:
        rows = self._db.execute(
            "SELECT name, version FROM revision_entries WHERE realm = ? AND locker = ? "
            "AND revision = ?",
            (realm, locker, revision),
        ).fetchall()
        return {name: int(version) for name, version in rows}

    def _new_revision(
        self, realm: str, locker: str, revision: int, entries: Mapping[str, int], now: float
    ) -> None:
        self._db.execute(
            "INSERT INTO revisions VALUES (?, ?, ?, ?)", (realm, locker, revision, now)
        )
        self._db.executemany(
            "INSERT INTO revision_entries VALUES (?, ?, ?, ?, ?)",
            [(realm, locker, revision, name, version) for name, version in entries.items()],
        )
        self._db.execute(
            "UPDATE lockers SET revision = ?, updated_at = ? WHERE realm = ? AND name = ?",
            (revision, now, realm, locker),
        )

    def _value(
        self, realm: str, locker: str, name: str, version: int, wrapper: KeyWrapper
    ) -> bytes:
        row = self._db.execute(
            "SELECT key_version, sealed FROM secret_values WHERE realm = ? AND locker = ? "
            "AND name = ? AND version = ?",
            (realm, locker, name, version),
        ).fetchone()
        if row is None:
            raise SecretNotFoundError(realm, locker, name)
        key = self._data_key(realm, locker, int(row[0]), wrapper)
        return unseal(key, bytes(row[1]), _value_context(realm, locker, name, version))

    def _state(self, realm: str, locker: str) -> LockerState:
        row = self._locker_row(realm, locker)
        if row is None:
            raise SecretNotFoundError(realm, locker)
        revision, key_version, updated_at, _ = row
        rows = self._db.execute(
            "SELECT e.name, e.version, v.created_at, v.size FROM revision_entries e "
            "JOIN secret_values v ON v.realm = e.realm AND v.locker = e.locker "
            "AND v.name = e.name AND v.version = e.version "
            "WHERE e.realm = ? AND e.locker = ? AND e.revision = ? ORDER BY e.name",
            (realm, locker, revision),
        ).fetchall()
        return LockerState(
            realm=realm,
            name=locker,
            revision=revision,
            key_version=key_version,
            updated_at=updated_at,
            secrets=tuple(SecretMeta(n, int(v), float(t), int(s)) for n, v, t, s in rows),
        )


def _value_context(realm: str, locker: str, name: str, version: int) -> bytes:
    return context(_VALUE_PURPOSE, realm, locker, name, version)


def _dek_context(realm: str, locker: str, key_version: int) -> bytes:
    return context(_DEK_CONTEXT, realm, locker, key_version)
