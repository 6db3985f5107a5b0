"""The vault's cryptography: a passphrase-derived key, AES-256-GCM, and key wrapping.

- Key derivation: scrypt (`cryptography`'s implementation) with a random 16-byte salt per
  vault, N=2**15, r=8, p=1 (about 32 MiB and a few tens of milliseconds per derivation:
  paid once per unlock, and expensive for someone guessing passphrases offline). The
  salt and the cost parameters are stored with the vault, so they can be raised later
  without breaking existing vaults.
- Encryption: AES-256-GCM with a random 96-bit nonce per message (stored in front of the
  ciphertext) and associated data that binds every ciphertext to where it belongs
  (realm, locker, name, version): a value copied to another row fails authentication.
- Envelope: each locker has its own random 256-bit data key; the data key is stored
  wrapped (encrypted) by a `KeyWrapper`. Today the wrapper holds the passphrase-derived
  key; an OS-keyring wrapper or a KMS wrapper (the KMS's own key wraps the data keys)
  implements the same protocol.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

KEY_BYTES = 32
NONCE_BYTES = 12
SALT_BYTES = 16
DEFAULT_SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1


class DecryptionError(Exception):
    """A ciphertext failed authentication: wrong key, tampered data, or wrong context."""


@dataclass(frozen=True)
class KdfParams:
    """scrypt's inputs besides the passphrase; stored in the clear with the vault."""

    salt: bytes
    n: int = DEFAULT_SCRYPT_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P

    @classmethod
    def fresh(cls, n: int = DEFAULT_SCRYPT_N) -> KdfParams:
        return cls(salt=os.urandom(SALT_BYTES), n=n)

    def to_json(self) -> bytes:
        return json.dumps(
            {"kdf": "scrypt", "salt": self.salt.hex(), "n": self.n, "r": self.r, "p": self.p}
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> KdfParams:
        doc = json.loads(raw)
        if doc.get("kdf") != "scrypt":
            raise ValueError(f"unknown key derivation {doc.get('kdf')!r}")
        return cls(
            salt=bytes.fromhex(doc["salt"]), n=int(doc["n"]), r=int(doc["r"]), p=int(doc["p"])
        )


def derive_key(passphrase: bytes, params: KdfParams) -> bytes:
    if not passphrase:
        raise ValueError("the passphrase is empty")
    kdf = Scrypt(salt=params.salt, length=KEY_BYTES, n=params.n, r=params.r, p=params.p)
    return kdf.derive(passphrase)


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """nonce || AES-256-GCM(plaintext) with its tag."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def unseal(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    if len(sealed) < NONCE_BYTES + 16:
        raise DecryptionError("ciphertext too short")
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
    except InvalidTag as e:
        raise DecryptionError("authentication failed") from e


def context(*parts: str | int) -> bytes:
    """Associated data: NUL-separated parts (names cannot contain NUL)."""
    return "\0".join(str(p) for p in parts).encode()


class KeyWrapper(Protocol):
    """Wraps and unwraps data keys; the one thing a vault backend must provide.

    `context` is bound to the wrapped key (AES-GCM associated data here, the
    EncryptionContext for AWS KMS), so a wrapped key moved to another locker or version
    does not unwrap. Backends: `PassphraseKeyWrapper`, `KeyringKeyWrapper` (a random root
    key held by the OS keyring) and `AwsKmsKeyWrapper` (`ozwald_agent/secrets/backends.py`).
    """

    @property
    def backend(self) -> str: ...

    def generate(self, context: bytes) -> tuple[bytes, bytes]:
        """A new data key: (plaintext, wrapped). KMS makes it (GenerateDataKey)."""
        ...

    def wrap(self, data_key: bytes, context: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        """DecryptionError when it does not authenticate."""
        ...

    def rewrap(self, wrapped: bytes, context: bytes) -> bytes:
        """The same data key wrapped under the backend's current key (KMS: ReEncrypt)."""
        ...


class AesKeyWrapper:
    """Data keys wrapped with AES-256-GCM under a 256-bit master key held in memory."""

    _PURPOSE = "ozwald.vault.dek.v1"
    _CHECK = b"ozwald.vault.check.v1"

    def __init__(self, master_key: bytes, backend: str = "passphrase") -> None:
        if len(master_key) != KEY_BYTES:
            raise ValueError("the master key must be 32 bytes")
        self._key = master_key
        self._backend = backend

    @property
    def backend(self) -> str:
        return self._backend

    def generate(self, context: bytes) -> tuple[bytes, bytes]:
        key = new_data_key()
        return key, self.wrap(key, context)

    def wrap(self, data_key: bytes, context: bytes) -> bytes:
        return seal(self._key, data_key, self._PURPOSE.encode() + b"\0" + context)

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        return unseal(self._key, wrapped, self._PURPOSE.encode() + b"\0" + context)

    def rewrap(self, wrapped: bytes, context: bytes) -> bytes:
        return self.wrap(self.unwrap(wrapped, context), context)

    def check_token(self) -> bytes:
        """A sealed constant stored with the vault: opening it proves the key."""
        return seal(self._key, b"ozwald-vault", self._CHECK)

    def verify(self, token: bytes) -> None:
        unseal(self._key, token, self._CHECK)


class PassphraseKeyWrapper(AesKeyWrapper):
    """Data keys wrapped with AES-256-GCM under the scrypt-derived master key."""

    def __init__(self, master_key: bytes) -> None:
        super().__init__(master_key, "passphrase")


class KeyringKeyWrapper(AesKeyWrapper):
    """Data keys wrapped under a random root key that the OS keyring holds."""

    def __init__(self, master_key: bytes) -> None:
        super().__init__(master_key, "keyring")
