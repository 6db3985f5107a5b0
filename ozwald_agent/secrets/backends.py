"""The vault's key backends besides the passphrase: the OS keyring and AWS KMS.

Chosen per agent with `ozwald-agent --vault-backend passphrase|keyring|aws-kms`
(docs/secrets.md). Both open the vault at agent start, without a passphrase:

- keyring: a random 256-bit root key, stored in the OS keyring through the `keyring`
  package (service `--vault-keyring-service`, user = the agent id), wraps the data keys
  with AES-256-GCM exactly as the passphrase-derived key does.
- aws-kms: envelope encryption. Each locker's data key is made by KMS (`GenerateDataKey`
  under `--vault-kms-key-id`); only its wrapped form is stored, `Decrypt` unwraps it, and
  the `EncryptionContext` names the realm, locker and key version, so a wrapped key
  moved to another locker does not decrypt. `Vault.rewrap()` re-wraps every data key
  under the key's current version (`ReEncrypt`).

`keyring` and `boto3` are optional (`pip install 'ozwald[keyring]'`, `'ozwald[aws-kms]'`)
and imported only when their backend is chosen.
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ozwald_agent.secrets.crypto import KEY_BYTES, DecryptionError, KeyringKeyWrapper, KeyWrapper
from ozwald_agent.secrets.errors import VaultLockedError

logger = logging.getLogger(__name__)

BACKENDS = ("passphrase", "keyring", "aws-kms")
DEFAULT_KEYRING_SERVICE = "ozwald-agent"
# Names of the context's parts, by purpose, as they appear in KMS's EncryptionContext
# (and so in CloudTrail): readable, and each one bound.
_CONTEXT_FIELDS = {
    "ozwald.vault.locker": ("realm", "locker", "key_version"),
}


class KeyBackendError(VaultLockedError):
    """The backend holding the vault's key cannot be used (missing library, unreachable
    service, no key): for everything that needs a value, the vault stays locked."""


@dataclass(frozen=True)
class VaultBackendConfig:
    name: str = "passphrase"
    keyring_service: str = DEFAULT_KEYRING_SERVICE
    kms_key_id: str = ""
    kms_region: str = ""
    kms_endpoint_url: str = ""


def open_wrapper(config: VaultBackendConfig, agent_id: str, *, vault_exists: bool) -> KeyWrapper:
    """The key wrapper of a keyring or aws-kms backend, ready to open the vault."""
    if config.name == "keyring":
        return keyring_wrapper(config.keyring_service, agent_id, create=not vault_exists)
    if config.name == "aws-kms":
        return AwsKmsKeyWrapper.connect(
            config.kms_key_id, region=config.kms_region, endpoint_url=config.kms_endpoint_url
        )
    raise ValueError(f"backend {config.name!r} is not opened without a passphrase")


def _optional(module: str, extra: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise KeyBackendError(
            f"the {extra} vault backend needs the Python package {module!r}, which is not "
            "installed",
            f"install it: pip install 'ozwald[{extra}]'",
        ) from e


# -- keyring -------------------------------------------------------------------------


def keyring_wrapper(service: str, user: str, *, create: bool) -> KeyringKeyWrapper:
    """The root key from the OS keyring; a new random one stored there when `create`."""
    keyring = _optional("keyring", "keyring")
    errors = importlib.import_module("keyring.errors")
    where = f"keyring entry {service}/{user} ({type(keyring.get_keyring()).__name__})"
    try:
        stored = keyring.get_password(service, user)
        if stored is None and create:
            keyring.set_password(service, user, os.urandom(KEY_BYTES).hex())
            stored = keyring.get_password(service, user)
            logger.info("stored a new vault root key in the %s", where)
    except errors.KeyringError as e:
        raise KeyBackendError(
            f"the OS keyring cannot be used: {e}",
            "check that a keyring service runs for the agent's user (e.g. the Secret "
            "Service: gnome-keyring-daemon, unlocked) or choose one with "
            "PYTHON_KEYRING_BACKEND",
        ) from e
    if stored is None:
        raise KeyBackendError(
            f"the vault exists but the {where} is missing: the vault's root key is gone",
            "restore the keyring entry from a backup, or start with the backend the vault "
            "was moved to",
        )
    try:
        key = bytes.fromhex(stored)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise KeyBackendError(
            f"the {where} does not hold a 256-bit key in hex",
            "restore the entry the vault was created with",
        )
    return KeyringKeyWrapper(key)


# -- AWS KMS -------------------------------------------------------------------------


def encryption_context(context: bytes) -> dict[str, str]:
    """The vault's context (NUL-separated parts) as a KMS EncryptionContext."""
    purpose, *parts = context.decode().split("\0")
    names = _CONTEXT_FIELDS.get(purpose, tuple(f"part{i}" for i in range(1, len(parts) + 1)))
    if len(names) != len(parts):
        names = tuple(f"part{i}" for i in range(1, len(parts) + 1))
    return {
        "ozwald:purpose": purpose,
        **{f"ozwald:{n}": p for n, p in zip(names, parts, strict=True)},
    }


class AwsKmsKeyWrapper:
    """Data keys made and wrapped by AWS KMS; the agent never holds the KMS key."""

    def __init__(self, key_id: str, client: Any) -> None:
        self._key_id = key_id
        self._client = client
        self._errors = importlib.import_module("botocore.exceptions")

    @classmethod
    def connect(cls, key_id: str, *, region: str = "", endpoint_url: str = "") -> AwsKmsKeyWrapper:
        if not key_id:
            raise KeyBackendError(
                "the aws-kms vault backend needs a KMS key",
                "give --vault-kms-key-id (key id, ARN or alias/NAME)",
            )
        boto3 = _optional("boto3", "aws-kms")
        client = boto3.client("kms", region_name=region or None, endpoint_url=endpoint_url or None)
        return cls(key_id, client)

    @property
    def backend(self) -> str:
        return "aws-kms"

    def generate(self, context: bytes) -> tuple[bytes, bytes]:
        reply = self._call(
            "GenerateDataKey",
            lambda: self._client.generate_data_key(
                KeyId=self._key_id, KeySpec="AES_256", EncryptionContext=encryption_context(context)
            ),
        )
        return bytes(reply["Plaintext"]), bytes(reply["CiphertextBlob"])

    def wrap(self, data_key: bytes, context: bytes) -> bytes:
        reply = self._call(
            "Encrypt",
            lambda: self._client.encrypt(
                KeyId=self._key_id,
                Plaintext=data_key,
                EncryptionContext=encryption_context(context),
            ),
        )
        return bytes(reply["CiphertextBlob"])

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        # No KeyId: the ciphertext names its key, so data keys wrapped before the
        # configured alias moved still open until `rewrap` moves them.
        reply = self._call(
            "Decrypt",
            lambda: self._client.decrypt(
                CiphertextBlob=wrapped, EncryptionContext=encryption_context(context)
            ),
        )
        return bytes(reply["Plaintext"])

    def rewrap(self, wrapped: bytes, context: bytes) -> bytes:
        where = encryption_context(context)
        reply = self._call(
            "ReEncrypt",
            lambda: self._client.re_encrypt(
                CiphertextBlob=wrapped,
                SourceEncryptionContext=where,
                DestinationKeyId=self._key_id,
                DestinationEncryptionContext=where,
            ),
        )
        return bytes(reply["CiphertextBlob"])

    def _call(self, operation: str, call: Any) -> Any:
        try:
            return call()
        except self._errors.ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code in ("InvalidCiphertextException", "IncorrectKeyException"):
                raise DecryptionError(f"KMS {operation}: {code}") from e
            raise KeyBackendError(
                f"AWS KMS refused {operation} with key {self._key_id}: {code}",
                "check the key id, that the key is enabled, and the agent's IAM permissions "
                "(kms:GenerateDataKey, kms:Encrypt, kms:Decrypt, kms:ReEncrypt*)",
            ) from e
        except self._errors.BotoCoreError as e:
            raise KeyBackendError(
                f"AWS KMS cannot be reached for {operation}: {e}",
                "check the network, the region (--vault-kms-region) and the credentials",
            ) from e
