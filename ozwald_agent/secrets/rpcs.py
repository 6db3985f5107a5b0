"""VaultService: the vault over gRPC, every call audited (never a value)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import NoReturn, TypeVar

import grpc
from google.protobuf import timestamp_pb2
from ozwald.agent.v1 import vault_service_pb2 as pb
from ozwald.agent.v1 import vault_service_pb2_grpc
from ozwald.common.v1 import error_reason_pb2

from ozwald_agent.secrets.env_import import parse_secrets
from ozwald_agent.secrets.errors import (
    InvalidSecretError,
    SecretNotFoundError,
    VaultError,
    VaultLockedError,
    WrongPassphraseError,
)
from ozwald_agent.secrets.names import DEFAULT_REALM, check_locker, check_realm
from ozwald_agent.secrets.vault import LockerState, SecretMeta, Vault
from ozwald_sdk import rpc_status
from ozwald_sdk.logs import correlation_id
from ozwald_sdk.metadata import CLIENT_UID_KEY

logger = logging.getLogger(__name__)

DEFAULT_AUDIT_LIMIT = 100
T = TypeVar("T")


def caller(context: grpc.ServicerContext) -> str:
    """Who, for the audit log: the mTLS certificate's subject, else the claimed local uid."""
    auth = context.auth_context() or {}
    for key in ("x509_subject", "x509_common_name"):
        values = auth.get(key)
        if values:
            first = values[0]
            text = first.decode(errors="replace") if isinstance(first, bytes) else str(first)
            return f"tls:{text}"
    claimed = next(
        (v for k, v in (context.invocation_metadata() or ()) if k == CLIENT_UID_KEY), None
    )
    if isinstance(claimed, str) and claimed.isdigit():
        return f"unix:uid={claimed} (claimed)"
    return "unix:uid=unknown"


class VaultRpcs(vault_service_pb2_grpc.VaultServiceServicer):
    def __init__(self, vault: Vault) -> None:
        self._vault = vault

    def UnlockVault(
        self, request: pb.UnlockVaultRequest, context: grpc.ServicerContext
    ) -> pb.UnlockVaultResponse:
        created = self._audited(
            context,
            "unlock",
            lambda: self._vault.unlock(request.passphrase, create=request.create),
        )
        logger.info("vault %s", "created and unlocked" if created else "unlocked")
        return pb.UnlockVaultResponse(created=created)

    def LockVault(
        self, request: pb.LockVaultRequest, context: grpc.ServicerContext
    ) -> pb.LockVaultResponse:
        self._audited(context, "lock", self._vault.lock)
        logger.info("vault locked")
        return pb.LockVaultResponse()

    def GetVaultStatus(
        self, request: pb.GetVaultStatusRequest, context: grpc.ServicerContext
    ) -> pb.GetVaultStatusResponse:
        lockers = self._audited(
            context, "status", lambda: self._vault.lockers(request.realm), realm=request.realm
        )
        return pb.GetVaultStatusResponse(
            exists=self._vault.exists,
            unlocked=self._vault.unlocked,
            backend=self._vault.backend,
            lockers=[_locker_info(s, with_secrets=False) for s in lockers],
        )

    def ChangeVaultPassphrase(
        self, request: pb.ChangeVaultPassphraseRequest, context: grpc.ServicerContext
    ) -> pb.ChangeVaultPassphraseResponse:
        count = self._audited(
            context,
            "passphrase",
            lambda: self._vault.change_passphrase(request.old_passphrase, request.new_passphrase),
        )
        return pb.ChangeVaultPassphraseResponse(rewrapped_keys=count)

    def SetSecrets(
        self, request: pb.SetSecretsRequest, context: grpc.ServicerContext
    ) -> pb.SetSecretsResponse:
        realm = request.realm or DEFAULT_REALM
        state = self._audited(
            context,
            "set",
            lambda: self._vault.set(realm, request.locker, dict(request.values)),
            realm=realm,
            locker=request.locker,
            names=list(request.values),
        )
        return pb.SetSecretsResponse(locker=_locker_info(state))

    def ImportSecrets(
        self, request: pb.ImportSecretsRequest, context: grpc.ServicerContext
    ) -> pb.ImportSecretsResponse:
        realm = request.realm or DEFAULT_REALM
        names: list[str] = []

        def run() -> LockerState:
            check_realm(realm)
            check_locker(request.locker)
            values = parse_secrets(request.env_file, request.source or "the env file")
            names.extend(values)
            return self._vault.set(realm, request.locker, values)

        state = self._audited(context, "import", run, realm=realm, locker=request.locker)
        return pb.ImportSecretsResponse(locker=_locker_info(state), imported=sorted(names))

    def GetSecret(
        self, request: pb.GetSecretRequest, context: grpc.ServicerContext
    ) -> pb.GetSecretResponse:
        realm = request.realm or DEFAULT_REALM
        if request.reveal:
            meta, value = self._audited(
                context,
                "reveal",
                lambda: self._vault.reveal(realm, request.locker, request.name),
                realm=realm,
                locker=request.locker,
                names=[request.name],
            )
            return pb.GetSecretResponse(secret=_secret_info(meta), value=value)
        meta = self._audited(
            context,
            "get",
            lambda: self._vault.secret(realm, request.locker, request.name),
            realm=realm,
            locker=request.locker,
            names=[request.name],
        )
        return pb.GetSecretResponse(secret=_secret_info(meta))

    def ListSecrets(
        self, request: pb.ListSecretsRequest, context: grpc.ServicerContext
    ) -> pb.ListSecretsResponse:
        lockers = self._audited(
            context,
            "list",
            lambda: self._vault.lockers(request.realm, request.locker),
            realm=request.realm,
            locker=request.locker,
        )
        return pb.ListSecretsResponse(lockers=[_locker_info(s) for s in lockers])

    def DeleteSecrets(
        self, request: pb.DeleteSecretsRequest, context: grpc.ServicerContext
    ) -> pb.DeleteSecretsResponse:
        realm = request.realm or DEFAULT_REALM
        whole, deleted = self._audited(
            context,
            "delete",
            lambda: self._vault.delete(realm, request.locker, list(request.names)),
            realm=realm,
            locker=request.locker,
            names=list(request.names),
        )
        return pb.DeleteSecretsResponse(locker_deleted=whole, deleted=deleted)

    def RotateLocker(
        self, request: pb.RotateLockerRequest, context: grpc.ServicerContext
    ) -> pb.RotateLockerResponse:
        realm = request.realm or DEFAULT_REALM
        state, count = self._audited(
            context,
            "rotate",
            lambda: self._vault.rotate(realm, request.locker),
            realm=realm,
            locker=request.locker,
        )
        return pb.RotateLockerResponse(locker=_locker_info(state), reencrypted_values=count)

    def ListSecretAudit(
        self, request: pb.ListSecretAuditRequest, context: grpc.ServicerContext
    ) -> pb.ListSecretAuditResponse:
        records = self._vault.audit_records(request.realm, request.limit or DEFAULT_AUDIT_LIMIT)
        return pb.ListSecretAuditResponse(
            records=[
                pb.SecretAuditRecord(
                    at=_timestamp(r.at),
                    who=r.who,
                    action=r.action,
                    realm=r.realm,
                    locker=r.locker,
                    names=r.names,
                    outcome=r.outcome,
                    correlation_id=r.correlation_id,
                )
                for r in records
            ]
        )

    def _audited(
        self,
        context: grpc.ServicerContext,
        action: str,
        work: Callable[[], T],
        *,
        realm: str = "",
        locker: str = "",
        names: list[str] | None = None,
    ) -> T:
        """Runs `work`, records the access with its outcome, maps vault errors to statuses."""
        who = caller(context)
        cid = correlation_id.get() or ""

        def record(outcome: str) -> None:
            self._vault.audit(
                who,
                action,
                realm=realm,
                locker=locker,
                names=names or [],
                outcome=outcome,
                correlation_id=cid,
            )

        try:
            result = work()
        except VaultError as e:
            record(e.reason)
            _abort(context, e)
        record("ok")
        return result


def _abort(context: grpc.ServicerContext, error: VaultError) -> NoReturn:
    if isinstance(error, VaultLockedError):
        rpc_status.abort(
            context,
            grpc.StatusCode.FAILED_PRECONDITION,
            error_reason_pb2.ERROR_REASON_VAULT_LOCKED,
            error.message,
            error.remedy,
        )
    if isinstance(error, WrongPassphraseError):
        rpc_status.abort(
            context,
            grpc.StatusCode.PERMISSION_DENIED,
            error_reason_pb2.ERROR_REASON_VAULT_PASSPHRASE_WRONG,
            error.message,
            error.remedy,
        )
    if isinstance(error, SecretNotFoundError):
        metadata = {"locker": f"{error.realm}/{error.locker}"}
        if error.name:
            metadata["secret"] = error.name
        rpc_status.abort(
            context,
            grpc.StatusCode.NOT_FOUND,
            error_reason_pb2.ERROR_REASON_SECRET_NOT_FOUND,
            error.message,
            error.remedy,
            **metadata,
        )
    field = error.field if isinstance(error, InvalidSecretError) else ""
    rpc_status.abort(
        context,
        grpc.StatusCode.INVALID_ARGUMENT,
        error_reason_pb2.ERROR_REASON_INVALID_ARGUMENT,
        error.message,
        error.remedy,
        **({"field": field} if field else {}),
    )


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def _secret_info(meta: SecretMeta) -> pb.SecretInfo:
    return pb.SecretInfo(
        name=meta.name,
        version=meta.version,
        updated_at=_timestamp(meta.updated_at),
        size_bytes=meta.size,
    )


def _locker_info(state: LockerState, *, with_secrets: bool = True) -> pb.LockerInfo:
    return pb.LockerInfo(
        realm=state.realm,
        name=state.name,
        revision=state.revision,
        key_version=state.key_version,
        secrets=[_secret_info(s) for s in state.secrets] if with_secrets else [],
        updated_at=_timestamp(state.updated_at),
    )
