"""`VaultClient`: the agent's vault (docs/secrets.md), for the CLI and programs.

Values are `bytes` in and out; nothing here prints or logs them. Every call carries a
deadline and a correlation id, and the caller's uid (recorded by the agent's audit log
as a claim: grpcio does not expose the unix socket's peer credentials).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from ozwald.agent.v1 import vault_service_pb2 as pb

from ozwald_sdk.metadata import client_uid_metadata
from ozwald_sdk.retry import DEFAULT_RETRY, RetryPolicy
from ozwald_sdk.rpc.vault_service import VaultServiceRpc
from ozwald_sdk.service_client import ServiceClient
from ozwald_sdk.target import AgentTarget

DEFAULT_TIMEOUT = 30.0  # unlock runs scrypt on the agent
T = TypeVar("T")


class VaultClient(ServiceClient):
    """Blocking client for one agent's vault; a context manager."""

    def __init__(
        self,
        target: str | AgentTarget | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        correlation_id: str | None = None,
    ) -> None:
        super().__init__(
            target,
            timeout=timeout,
            retry=retry,
            correlation_id=correlation_id,
            metadata=client_uid_metadata(),
        )
        self._rpc = VaultServiceRpc(self._channel, self.target)

    def unlock(self, passphrase: bytes, *, create: bool = False) -> bool:
        """True when this call created the vault."""
        request = pb.UnlockVaultRequest(passphrase=passphrase, create=create)
        return self._call(
            lambda t: self._rpc.unlock_vault(request, timeout=t, metadata=self._metadata),
            idempotent=True,
        ).created

    def lock(self) -> None:
        self._call(
            lambda t: self._rpc.lock_vault(
                pb.LockVaultRequest(), timeout=t, metadata=self._metadata
            ),
            idempotent=True,
        )

    def status(self, realm: str = "") -> pb.GetVaultStatusResponse:
        request = pb.GetVaultStatusRequest(realm=realm)
        return self._call(
            lambda t: self._rpc.get_vault_status(request, timeout=t, metadata=self._metadata),
            idempotent=True,
        )

    def change_passphrase(self, old: bytes, new: bytes) -> int:
        request = pb.ChangeVaultPassphraseRequest(old_passphrase=old, new_passphrase=new)
        return self._call(
            lambda t: self._rpc.change_vault_passphrase(request, timeout=t, metadata=self._metadata)
        ).rewrapped_keys

    def set(self, locker: str, values: Mapping[str, bytes], *, realm: str = "") -> pb.LockerInfo:
        request = pb.SetSecretsRequest(realm=realm, locker=locker, values=dict(values))
        return self._call(
            lambda t: self._rpc.set_secrets(request, timeout=t, metadata=self._metadata)
        ).locker

    def import_env_file(
        self, locker: str, content: bytes, *, source: str, realm: str = ""
    ) -> pb.ImportSecretsResponse:
        request = pb.ImportSecretsRequest(
            realm=realm, locker=locker, env_file=content, source=source
        )
        return self._call(
            lambda t: self._rpc.import_secrets(request, timeout=t, metadata=self._metadata)
        )

    def get(
        self, locker: str, name: str, *, realm: str = "", reveal: bool = False
    ) -> pb.GetSecretResponse:
        request = pb.GetSecretRequest(realm=realm, locker=locker, name=name, reveal=reveal)
        return self._call(
            lambda t: self._rpc.get_secret(request, timeout=t, metadata=self._metadata),
            idempotent=True,
        )

    def list_lockers(self, *, realm: str = "", locker: str = "") -> list[pb.LockerInfo]:
        request = pb.ListSecretsRequest(realm=realm, locker=locker)
        return list(
            self._call(
                lambda t: self._rpc.list_secrets(request, timeout=t, metadata=self._metadata),
                idempotent=True,
            ).lockers
        )

    def delete(
        self, locker: str, names: Sequence[str] = (), *, realm: str = ""
    ) -> pb.DeleteSecretsResponse:
        request = pb.DeleteSecretsRequest(realm=realm, locker=locker, names=list(names))
        return self._call(
            lambda t: self._rpc.delete_secrets(request, timeout=t, metadata=self._metadata)
        )

    def rotate(self, locker: str, *, realm: str = "") -> pb.RotateLockerResponse:
        request = pb.RotateLockerRequest(realm=realm, locker=locker)
        return self._call(
            lambda t: self._rpc.rotate_locker(request, timeout=t, metadata=self._metadata)
        )

    def audit(self, *, realm: str = "", limit: int = 0) -> list[pb.SecretAuditRecord]:
        request = pb.ListSecretAuditRequest(realm=realm, limit=limit)
        return list(
            self._call(
                lambda t: self._rpc.list_secret_audit(request, timeout=t, metadata=self._metadata),
                idempotent=True,
            ).records
        )
