"""What the vault refuses; each says what, why and what to do next."""

from __future__ import annotations


class VaultError(Exception):
    reason = "VAULT_ERROR"

    def __init__(self, message: str, remedy: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy


class VaultLockedError(VaultError):
    reason = "VAULT_LOCKED"


class WrongPassphraseError(VaultError):
    reason = "VAULT_PASSPHRASE_WRONG"


class SecretNotFoundError(VaultError):
    reason = "SECRET_NOT_FOUND"

    def __init__(self, realm: str, locker: str, name: str = "") -> None:
        what = f"secret {name!r} in locker {realm}/{locker}" if name else f"locker {realm}/{locker}"
        super().__init__(
            f"no {what} in the vault",
            "list what exists with `ozwald secrets list`",
        )
        self.realm, self.locker, self.name = realm, locker, name


class InvalidSecretError(VaultError):
    """A name, value or env file the vault does not accept."""

    reason = "INVALID_ARGUMENT"

    def __init__(self, message: str, remedy: str = "", field: str = "") -> None:
        super().__init__(message, remedy)
        self.field = field
