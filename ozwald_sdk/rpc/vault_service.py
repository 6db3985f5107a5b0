"""VaultService's calls, typed, with explicit timeouts and metadata, raising OzwaldError."""

from __future__ import annotations

import grpc
from ozwald.agent.v1 import vault_service_pb2 as pb
from ozwald.agent.v1 import vault_service_pb2_grpc

from ozwald_sdk.rpc.calls import Metadata, SyncRpc
from ozwald_sdk.target import AgentTarget


class VaultServiceRpc(SyncRpc):
    """VaultService over a sync channel; one method per RPC, no retries, no defaults."""

    def __init__(self, channel: grpc.Channel, target: AgentTarget) -> None:
        self._stub = vault_service_pb2_grpc.VaultServiceStub(channel)
        self._target = target

    def unlock_vault(
        self, request: pb.UnlockVaultRequest, *, timeout: float, metadata: Metadata
    ) -> pb.UnlockVaultResponse:
        return self._unary("UnlockVault", self._stub.UnlockVault, request, timeout, metadata)

    def lock_vault(
        self, request: pb.LockVaultRequest, *, timeout: float, metadata: Metadata
    ) -> pb.LockVaultResponse:
        return self._unary("LockVault", self._stub.LockVault, request, timeout, metadata)

    def get_vault_status(
        self, request: pb.GetVaultStatusRequest, *, timeout: float, metadata: Metadata
    ) -> pb.GetVaultStatusResponse:
        return self._unary("GetVaultStatus", self._stub.GetVaultStatus, request, timeout, metadata)

    def change_vault_passphrase(
        self, request: pb.ChangeVaultPassphraseRequest, *, timeout: float, metadata: Metadata
    ) -> pb.ChangeVaultPassphraseResponse:
        return self._unary(
            "ChangeVaultPassphrase", self._stub.ChangeVaultPassphrase, request, timeout, metadata
        )

    def set_secrets(
        self, request: pb.SetSecretsRequest, *, timeout: float, metadata: Metadata
    ) -> pb.SetSecretsResponse:
        return self._unary("SetSecrets", self._stub.SetSecrets, request, timeout, metadata)

    def import_secrets(
        self, request: pb.ImportSecretsRequest, *, timeout: float, metadata: Metadata
    ) -> pb.ImportSecretsResponse:
        return self._unary("ImportSecrets", self._stub.ImportSecrets, request, timeout, metadata)

    def get_secret(
        self, request: pb.GetSecretRequest, *, timeout: float, metadata: Metadata
    ) -> pb.GetSecretResponse:
        return self._unary("GetSecret", self._stub.GetSecret, request, timeout, metadata)

    def list_secrets(
        self, request: pb.ListSecretsRequest, *, timeout: float, metadata: Metadata
    ) -> pb.ListSecretsResponse:
        return self._unary("ListSecrets", self._stub.ListSecrets, request, timeout, metadata)

    def delete_secrets(
        self, request: pb.DeleteSecretsRequest, *, timeout: float, metadata: Metadata
    ) -> pb.DeleteSecretsResponse:
        return self._unary("DeleteSecrets", self._stub.DeleteSecrets, request, timeout, metadata)

    def rotate_locker(
        self, request: pb.RotateLockerRequest, *, timeout: float, metadata: Metadata
    ) -> pb.RotateLockerResponse:
        return self._unary("RotateLocker", self._stub.RotateLocker, request, timeout, metadata)

    def list_secret_audit(
        self, request: pb.ListSecretAuditRequest, *, timeout: float, metadata: Metadata
    ) -> pb.ListSecretAuditResponse:
        return self._unary(
            "ListSecretAudit", self._stub.ListSecretAudit, request, timeout, metadata
        )
