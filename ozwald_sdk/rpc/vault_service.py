"""VaultService's calls, typed, with explicit timeouts and metadata, raising OzwaldError."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import grpc
from google.protobuf.message import Message
from ozwald.agent.v1 import vault_service_pb2 as pb
from ozwald.agent.v1 import vault_service_pb2_grpc

from ozwald_sdk.errors import error_from_rpc
from ozwald_sdk.metadata import CORRELATION_ID_KEY
from ozwald_sdk.target import AgentTarget

Metadata = tuple[tuple[str, str], ...]
Response = TypeVar("Response", bound=Message)


class VaultServiceRpc:
    """VaultService over a sync channel; one method per RPC, no retries, no defaults."""

    def __init__(self, channel: grpc.Channel, target: AgentTarget) -> None:
        self._stub = vault_service_pb2_grpc.VaultServiceStub(channel)
        self._target = target

    def unlock_vault(
        self, request: pb.UnlockVaultRequest, *, timeout: float, metadata: Metadata
    ) -> pb.UnlockVaultResponse:
        return self._call("UnlockVault", self._stub.UnlockVault, request, timeout, metadata)

    def lock_vault(
        self, request: pb.LockVaultRequest, *, timeout: float, metadata: Metadata
    ) -> pb.LockVaultResponse:
        return self._call("LockVault", self._stub.LockVault, request, timeout, metadata)

    def get_vault_status(
        self, request: pb.GetVaultStatusRequest, *, timeout: float, metadata: Metadata
    ) -> pb.GetVaultStatusResponse:
        return self._call("GetVaultStatus", self._stub.GetVaultStatus, request, timeout, metadata)

    def change_vault_passphrase(
        self, request: pb.ChangeVaultPassphraseRequest, *, timeout: float, metadata: Metadata
    ) -> pb.ChangeVaultPassphraseResponse:
        return self._call(
            "ChangeVaultPassphrase", self._stub.ChangeVaultPassphrase, request, timeout, metadata
        )

    def set_secrets(
        self, request: pb.SetSecretsRequest, *, timeout: float, metadata: Metadata
    ) -> pb.SetSecretsResponse:
        return self._call("SetSecrets", self._stub.SetSecrets, request, timeout, metadata)

    def import_secrets(
        self, request: pb.ImportSecretsRequest, *, timeout: float, metadata: Metadata
    ) -> pb.ImportSecretsResponse:
        return self._call("ImportSecrets", self._stub.ImportSecrets, request, timeout, metadata)

    def get_secret(
        self, request: pb.GetSecretRequest, *, timeout: float, metadata: Metadata
    ) -> pb.GetSecretResponse:
        return self._call("GetSecret", self._stub.GetSecret, request, timeout, metadata)

    def list_secrets(
        self, request: pb.ListSecretsRequest, *, timeout: float, metadata: Metadata
    ) -> pb.ListSecretsResponse:
        return self._call("ListSecrets", self._stub.ListSecrets, request, timeout, metadata)

    def delete_secrets(
        self, request: pb.DeleteSecretsRequest, *, timeout: float, metadata: Metadata
    ) -> pb.DeleteSecretsResponse:
        return self._call("DeleteSecrets", self._stub.DeleteSecrets, request, timeout, metadata)

    def rotate_locker(
        self, request: pb.RotateLockerRequest, *, timeout: float, metadata: Metadata
    ) -> pb.RotateLockerResponse:
        return self._call("RotateLocker", self._stub.RotateLocker, request, timeout, metadata)

    def list_secret_audit(
        self, request: pb.ListSecretAuditRequest, *, timeout: float, metadata: Metadata
    ) -> pb.ListSecretAuditResponse:
        return self._call("ListSecretAudit", self._stub.ListSecretAudit, request, timeout, metadata)

    def _call(
        self,
        method: str,
        call: Callable[..., Response],
        request: Message,
        timeout: float,
        metadata: Metadata,
    ) -> Response:
        try:
            return call(request, timeout=timeout, metadata=metadata)
        except grpc.RpcError as e:
            correlation_id = next((v for k, v in metadata if k == CORRELATION_ID_KEY), None)
            raise error_from_rpc(
                e,
                method=method,
                target=self._target,
                timeout=timeout,
                correlation_id=correlation_id,
            ) from e
