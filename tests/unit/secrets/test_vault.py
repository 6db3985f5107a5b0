"""The vault store: lockers, revisions, rotation, passphrase change, audit."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ozwald_agent.secrets.errors import (
    InvalidSecretError,
    SecretNotFoundError,
    VaultLockedError,
    WrongPassphraseError,
)
from ozwald_agent.secrets.vault import Vault

CHEAP = 2**10


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[Vault]:
    v = Vault(tmp_path / "vault.db", scrypt_n=CHEAP)
    v.unlock(b"pass", create=True)
    yield v
    v.close()


def test_the_file_is_private_and_holds_no_value_in_the_clear(vault: Vault) -> None:
    vault.set("r", "db", {"password": b"very-secret-value"})
    assert stat.S_IMODE(vault.path.stat().st_mode) == 0o600
    vault.close()
    raw = b"".join(p.read_bytes() for p in vault.path.parent.glob("vault.db*"))
    assert b"very-secret-value" not in raw


def test_values_round_trip_and_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "vault.db"
    first = Vault(path, scrypt_n=CHEAP)
    assert first.unlock(b"pass", create=True) is True
    first.set("r", "db", {"user": b"app", "password": b"pw"})
    first.close()
    second = Vault(path, scrypt_n=CHEAP)
    assert second.exists and not second.unlocked
    with pytest.raises(VaultLockedError):
        second.reveal("r", "db", "password")
    # Names are readable while locked; values are not.
    assert [s.name for s in second.lockers("r")[0].secrets] == ["password", "user"]
    with pytest.raises(WrongPassphraseError):
        second.unlock(b"wrong")
    assert second.unlock(b"pass") is False
    assert second.reveal("r", "db", "password")[1] == b"pw"


def test_unlock_without_a_vault_needs_create(tmp_path: Path) -> None:
    v = Vault(tmp_path / "vault.db", scrypt_n=CHEAP)
    with pytest.raises(VaultLockedError, match="no vault yet"):
        v.unlock(b"pass")
    assert not v.exists


def test_every_change_makes_a_revision_and_old_ones_stay_readable_until_retired(
    vault: Vault,
) -> None:
    vault.set("r", "db", {"password": b"one"})
    vault.set("r", "db", {"password": b"two"})
    assert vault.current_revision("r", "db") == 2
    assert vault.read_revision("r", "db", 1) == {"password": b"one"}
    assert vault.read_revision("r", "db", 2) == {"password": b"two"}
    vault.retire_unused({("r", "db", 1)})
    assert vault.read_revision("r", "db", 1) == {"password": b"one"}
    vault.retire_unused(set())
    with pytest.raises(SecretNotFoundError):
        vault.read_revision("r", "db", 1)
    assert vault.read_revision("r", "db", 2) == {"password": b"two"}


def test_rotation_gives_a_new_data_key_and_keeps_every_kept_version_readable(
    vault: Vault,
) -> None:
    vault.set("r", "db", {"password": b"one"})
    vault.set("r", "db", {"password": b"two"})
    before = _sealed(vault)
    state, count = vault.rotate("r", "db")
    assert (state.key_version, state.revision, count) == (2, 2, 2)
    after = _sealed(vault)
    assert not set(before) & set(after)
    assert vault.read_revision("r", "db", 1) == {"password": b"one"}
    assert vault.read_revision("r", "db", 2) == {"password": b"two"}


def test_a_ciphertext_moved_to_another_name_fails_authentication(vault: Vault) -> None:
    vault.set("r", "db", {"a": b"alpha", "b": b"beta"})
    db = sqlite3.connect(vault.path)
    (sealed_a,) = db.execute("SELECT sealed FROM secret_values WHERE name = 'a'").fetchone()
    db.execute("UPDATE secret_values SET sealed = ? WHERE name = 'b'", (sealed_a,))
    db.commit()
    db.close()
    with pytest.raises(Exception, match="authentication"):
        vault.reveal("r", "db", "b")


def test_a_passphrase_change_rewraps_the_data_keys(tmp_path: Path, vault: Vault) -> None:
    vault.set("r", "db", {"password": b"pw"})
    vault.set("r", "cache", {"token": b"tk"})
    with pytest.raises(WrongPassphraseError):
        vault.change_passphrase(b"wrong", b"new")
    assert vault.change_passphrase(b"pass", b"new") == 2
    vault.lock()
    with pytest.raises(WrongPassphraseError):
        vault.unlock(b"pass")
    vault.unlock(b"new")
    assert vault.reveal("r", "cache", "token")[1] == b"tk"


def test_delete_makes_a_revision_without_the_name_and_a_whole_locker_goes(
    vault: Vault,
) -> None:
    vault.set("r", "db", {"a": b"1", "b": b"2"})
    assert vault.delete("r", "db", ["a"]) == (False, ["a"])
    assert [s.name for s in vault.lockers("r")[0].secrets] == ["b"]
    with pytest.raises(SecretNotFoundError):
        vault.delete("r", "db", ["a"])
    assert vault.delete("r", "db", []) == (True, ["b"])
    assert vault.current_revision("r", "db") is None
    # Still readable for a service admitted against it, until retired.
    assert vault.read_revision("r", "db", 2) == {"b": b"2"}
    vault.retire_unused(set())
    assert vault.lockers() == []


def test_names_and_sizes_are_checked(vault: Vault) -> None:
    with pytest.raises(InvalidSecretError):
        vault.set("r", "db", {"../escape": b"x"})
    with pytest.raises(InvalidSecretError):
        vault.set("r", "Bad/Locker", {"a": b"x"})
    with pytest.raises(InvalidSecretError):
        vault.set("r", "db", {"big": b"x" * (64 * 1024 + 1)})


def test_the_audit_log_keeps_who_what_when_and_never_a_value(vault: Vault) -> None:
    vault.audit("uid:1000", "reveal", realm="r", locker="db", names=["password"])
    (record,) = vault.audit_records()
    assert (record.who, record.action, record.names, record.outcome) == (
        "uid:1000",
        "reveal",
        "password",
        "ok",
    )
    assert record.at > 0


def _sealed(vault: Vault) -> list[bytes]:
    db = sqlite3.connect(vault.path)
    try:
        return [bytes(r[0]) for r in db.execute("SELECT sealed FROM secret_values")]
    finally:
        db.close()
