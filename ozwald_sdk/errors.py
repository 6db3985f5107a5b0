"""Every error the SDK raises: `OzwaldError` and its subclasses, with stable exit codes.

Servers send a google.rpc.Status whose ErrorInfo (domain "ozwald") carries a stable
reason code, a human message and a remedy. `error_from_rpc` turns a failed call into
the specific subclass only when the gRPC code *and* the reason match one it knows;
anything else becomes the generic class for the gRPC code, so a newer server's new
reasons still land somewhere sensible.

Exit codes (what the `ozwald` CLI returns; stable across releases):

    0    success
    1    FAILURE: an error with no more specific code (server bug, unexpected status)
    2    USAGE: bad command line (argparse)
    3    AGENT_UNREACHABLE: no agent (or orchestrator) answers, or it is shutting down
    4    CONNECTION_CONFIG: the agent address or TLS settings cannot be used
    5    PERMISSION_DENIED: the agent's socket or the agent refused this user
    6    DEADLINE_EXCEEDED: the agent did not answer in time
    7    INVALID_ARGUMENT: the agent refused the request as malformed
    8    AGENT_TOO_OLD: the agent does not implement the call
    10   CONFIG_INVALID: the config file (ozwald.yml) or a service selector is invalid;
         nothing was changed on any host
    11   ADMISSION_REFUSED: the agent refused an update; nothing changed (the refused
         plan is on the error)
    12   SERVICE_FAILED: a service failed to start or become healthy
    13   SERVICE_NOT_FOUND: the agent knows no such service
    14   CONTAINER_RUNTIME_UNAVAILABLE: the agent cannot use its container engine
    15   WEBHOOK_VETOED: a pre-provision or pre-deprovision webhook refused the change;
         nothing changed (the hook's name and reason are on the error)
    16   VAULT_LOCKED: the agent's vault is locked (or absent), or the passphrase given
         does not open it; nothing was read or changed
    17   SECRET_NOT_FOUND: the vault holds no such locker or secret
    18   DEPLOYMENT_INVALID: the orchestrator refused the deployments as invalid; nothing
         was stored
    19   DEPLOYMENT_NOT_FOUND: the orchestrator knows no such deployment
    20   AUDIT_TAMPERED: the audit log's hash chain is broken (a record was changed,
         removed or reordered, or records were cut off its end); the error names the
         first bad record
    21   HOST_NOT_FOUND: the orchestrator knows no such host
    22   ROLLOUT_NOT_FOUND: the deployment never had a rollout (its spec never changed)
    23   ROLLOUT_NOT_ACTIVE: the rollout is not in a state the action applies to (pausing
         a finished rollout, promoting one that waits for nothing)
    130  INTERRUPTED: Ctrl-C
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar

import grpc
from google.rpc import error_details_pb2, status_pb2
from ozwald.agent.v1 import plan_pb2
from ozwald.common.v1.error_reason_pb2 import (
    ERROR_REASON_ADMISSION_REFUSED,
    ERROR_REASON_CONTAINER_RUNTIME_UNAVAILABLE,
    ERROR_REASON_DEPLOYMENT_INVALID,
    ERROR_REASON_DEPLOYMENT_NOT_FOUND,
    ERROR_REASON_HOST_IDENTITY_MISMATCH,
    ERROR_REASON_HOST_NOT_FOUND,
    ERROR_REASON_HOST_PROFILE_FAILED,
    ERROR_REASON_INVALID_ARGUMENT,
    ERROR_REASON_ROLE_NOT_ALLOWED,
    ERROR_REASON_ROLLOUT_NOT_ACTIVE,
    ERROR_REASON_ROLLOUT_NOT_FOUND,
    ERROR_REASON_SECRET_NOT_FOUND,
    ERROR_REASON_SERVICE_NOT_FOUND,
    ERROR_REASON_SHUTTING_DOWN,
    ERROR_REASON_VAULT_LOCKED,
    ERROR_REASON_VAULT_PASSPHRASE_WRONG,
    ERROR_REASON_WEBHOOK_VETOED,
)

from ozwald_sdk.metadata import ERROR_DOMAIN, REMEDY_KEY, STATUS_DETAILS_KEY, reason_name

if TYPE_CHECKING:
    from ozwald_sdk.config.diagnostics import Diagnostic
    from ozwald_sdk.target import AgentTarget


class ExitCode(enum.IntEnum):
    """Process exit status for each kind of failure; see the module docstring."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    AGENT_UNREACHABLE = 3
    CONNECTION_CONFIG = 4
    PERMISSION_DENIED = 5
    DEADLINE_EXCEEDED = 6
    INVALID_ARGUMENT = 7
    AGENT_TOO_OLD = 8
    CONFIG_INVALID = 10
    ADMISSION_REFUSED = 11
    SERVICE_FAILED = 12
    SERVICE_NOT_FOUND = 13
    CONTAINER_RUNTIME_UNAVAILABLE = 14
    WEBHOOK_VETOED = 15
    VAULT_LOCKED = 16
    SECRET_NOT_FOUND = 17
    DEPLOYMENT_INVALID = 18
    DEPLOYMENT_NOT_FOUND = 19
    AUDIT_TAMPERED = 20
    HOST_NOT_FOUND = 21
    ROLLOUT_NOT_FOUND = 22
    ROLLOUT_NOT_ACTIVE = 23
    INTERRUPTED = 130


class OzwaldError(Exception):
    """Base of every SDK error: what went wrong, what to do next, and where it came from.

    `code` is the gRPC status of the failed call, None when the error arose before any
    call (a bad address, a missing socket). `reason` is the server's stable ErrorInfo
    reason, empty when the server sent none. `metadata` is the rest of the ErrorInfo
    metadata (e.g. "field" for an invalid argument).
    """

    exit_code: ClassVar[ExitCode] = ExitCode.FAILURE

    def __init__(
        self,
        message: str,
        *,
        remedy: str = "",
        reason: str = "",
        code: grpc.StatusCode | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy
        self.reason = reason
        self.code = code
        self.metadata: dict[str, str] = dict(metadata or {})


class ConnectionConfigError(OzwaldError):
    """The agent address or the TLS settings cannot be used; no call was made."""

    exit_code = ExitCode.CONNECTION_CONFIG


class UnavailableError(OzwaldError):
    """The server answered UNAVAILABLE for a reason this client does not know."""

    exit_code = ExitCode.AGENT_UNREACHABLE


class AgentUnreachableError(UnavailableError):
    """No agent answers at the address: no socket, connection refused, TLS handshake failed."""


class OrchestratorUnreachableError(UnavailableError):
    """No orchestrator answers at the address: no socket, connection refused, TLS failed."""


class ShuttingDownError(UnavailableError):
    """The agent is shutting down and takes no new work (UNAVAILABLE, SHUTTING_DOWN)."""


class PermissionDeniedError(OzwaldError):
    """This user may not use the agent: socket permissions, or the agent said no."""

    exit_code = ExitCode.PERMISSION_DENIED


class UnauthenticatedError(PermissionDeniedError):
    """The agent did not accept this client's credentials."""


class HostIdentityMismatchError(PermissionDeniedError):
    """The orchestrator refused an agent whose certificate does not name the host it
    claims, or is not an agent's (PERMISSION_DENIED, HOST_IDENTITY_MISMATCH)."""


class RoleNotAllowedError(PermissionDeniedError):
    """The certificate's role may not use this service, e.g. an agent's certificate
    calling FleetService (PERMISSION_DENIED, ROLE_NOT_ALLOWED): `role` is the role the
    certificate holds, `required` the one the service needs."""

    @property
    def role(self) -> str:
        return self.metadata.get("role", "")

    @property
    def required(self) -> str:
        return self.metadata.get("required", "")


class DeadlineExceededError(OzwaldError):
    """The call did not finish within its timeout."""

    exit_code = ExitCode.DEADLINE_EXCEEDED


class InvalidArgumentError(OzwaldError):
    """The agent refused the request as malformed; `field` names the culprit when known."""

    exit_code = ExitCode.INVALID_ARGUMENT

    @property
    def field(self) -> str | None:
        return self.metadata.get("field")


class UnimplementedError(OzwaldError):
    """The agent does not implement the call: it is older than this client."""

    exit_code = ExitCode.AGENT_TOO_OLD


class ResourceExhaustedError(OzwaldError):
    """The server is out of some resource or rate-limits this client."""


class InternalServerError(OzwaldError):
    """The server failed while handling the call (INTERNAL, UNKNOWN, DATA_LOSS)."""


class HostProfileFailedError(InternalServerError):
    """The agent could not collect the host profile at all (INTERNAL, HOST_PROFILE_FAILED)."""


class ConfigInvalidError(OzwaldError):
    """The config file or a service selector is invalid; every problem is in `diagnostics`.

    The message lists all of them, one per line, each as
    `FILE:LINE:COLUMN: key.path: what is wrong`, so a person (or an editor's problem
    matcher) can go straight to each place.
    """

    exit_code = ExitCode.CONFIG_INVALID

    def __init__(
        self,
        summary: str,
        diagnostics: Sequence[Diagnostic],
        *,
        remedy: str = "fix the problems above, then check with `ozwald config validate`",
    ) -> None:
        lines = [summary, *(diagnostic.render() for diagnostic in diagnostics)]
        super().__init__("\n".join(lines), remedy=remedy)
        self.summary = summary
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)


class AdmissionRefusedError(OzwaldError):
    """The agent refused an update (FAILED_PRECONDITION, ADMISSION_REFUSED); nothing changed.

    `plan` is the refused plan with every refusal, its arithmetic and its remedy; None
    only if the server sent none.
    """

    exit_code = ExitCode.ADMISSION_REFUSED
    plan: plan_pb2.Plan | None = None


class ServiceFailedError(OzwaldError):
    """A service failed to start or to become healthy while the client waited for it."""

    exit_code = ExitCode.SERVICE_FAILED


class ServiceNotFoundError(OzwaldError):
    """The agent knows no such service (NOT_FOUND, SERVICE_NOT_FOUND)."""

    exit_code = ExitCode.SERVICE_NOT_FOUND


class ContainerRuntimeUnavailableError(OzwaldError):
    """The agent cannot use its container engine (FAILED_PRECONDITION, CONTAINER_RUNTIME_...)."""

    exit_code = ExitCode.CONTAINER_RUNTIME_UNAVAILABLE


class WebhookVetoedError(OzwaldError):
    """A pre-event webhook refused an apply or a stop (FAILED_PRECONDITION, WEBHOOK_VETOED);
    nothing changed. `hook`, `service`, `event` and `hook_reason` say who refused what and
    why (the hook's answer, bounded and sanitised by the agent)."""

    exit_code = ExitCode.WEBHOOK_VETOED

    @property
    def hook(self) -> str:
        return self.metadata.get("hook", "")

    @property
    def service(self) -> str:
        return self.metadata.get("service", "")

    @property
    def event(self) -> str:
        return self.metadata.get("event", "")

    @property
    def hook_reason(self) -> str:
        return self.metadata.get("hook_reason", "")


class VaultLockedError(OzwaldError):
    """The agent's vault is locked or was never created (FAILED_PRECONDITION, VAULT_LOCKED)."""

    exit_code = ExitCode.VAULT_LOCKED


class VaultPassphraseWrongError(VaultLockedError):
    """The passphrase does not open the vault (PERMISSION_DENIED, VAULT_PASSPHRASE_WRONG)."""


class SecretNotFoundError(OzwaldError):
    """No such locker or secret (NOT_FOUND, SECRET_NOT_FOUND); `locker` is realm/locker."""

    exit_code = ExitCode.SECRET_NOT_FOUND

    @property
    def locker(self) -> str:
        return self.metadata.get("locker", "")


class DeploymentInvalidError(InvalidArgumentError):
    """The orchestrator refused the deployments (INVALID_ARGUMENT, DEPLOYMENT_INVALID);
    nothing was stored. `deployment` names the culprit when the server said which."""

    exit_code = ExitCode.DEPLOYMENT_INVALID

    @property
    def deployment(self) -> str:
        return self.metadata.get("deployment", "")


class DeploymentNotFoundError(OzwaldError):
    """The orchestrator knows no such deployment (NOT_FOUND, DEPLOYMENT_NOT_FOUND)."""

    exit_code = ExitCode.DEPLOYMENT_NOT_FOUND

    @property
    def deployment(self) -> str:
        return self.metadata.get("deployment", "")


class HostNotFoundError(OzwaldError):
    """The orchestrator knows no such host (NOT_FOUND, HOST_NOT_FOUND)."""

    exit_code = ExitCode.HOST_NOT_FOUND

    @property
    def host_id(self) -> str:
        return self.metadata.get("host_id", "")


class RolloutNotFoundError(OzwaldError):
    """The deployment never had a rollout (NOT_FOUND, ROLLOUT_NOT_FOUND)."""

    exit_code = ExitCode.ROLLOUT_NOT_FOUND

    @property
    def deployment(self) -> str:
        return self.metadata.get("deployment", "")


class RolloutNotActiveError(OzwaldError):
    """The rollout is not in a state the action applies to (FAILED_PRECONDITION,
    ROLLOUT_NOT_ACTIVE): `state` is its RolloutState name."""

    exit_code = ExitCode.ROLLOUT_NOT_ACTIVE

    @property
    def deployment(self) -> str:
        return self.metadata.get("deployment", "")

    @property
    def state(self) -> str:
        return self.metadata.get("state", "")


class AuditTamperedError(OzwaldError):
    """The audit log (or an export of it) failed verification: `sequence` is the first
    bad record, `break_kind` the AuditBreak name saying how it is broken."""

    exit_code = ExitCode.AUDIT_TAMPERED

    @property
    def sequence(self) -> int:
        return int(self.metadata.get("sequence", "0"))

    @property
    def break_kind(self) -> str:
        return self.metadata.get("break_kind", "")


class AuditExportError(OzwaldError):
    """A file given as an audit export is not JSON lines of audit records."""


_BY_CODE_AND_REASON: Mapping[tuple[grpc.StatusCode, str], type[OzwaldError]] = {
    (grpc.StatusCode.INVALID_ARGUMENT, reason_name(ERROR_REASON_INVALID_ARGUMENT)): (
        InvalidArgumentError
    ),
    (grpc.StatusCode.INTERNAL, reason_name(ERROR_REASON_HOST_PROFILE_FAILED)): (
        HostProfileFailedError
    ),
    (grpc.StatusCode.UNAVAILABLE, reason_name(ERROR_REASON_SHUTTING_DOWN)): ShuttingDownError,
    (grpc.StatusCode.FAILED_PRECONDITION, reason_name(ERROR_REASON_ADMISSION_REFUSED)): (
        AdmissionRefusedError
    ),
    (grpc.StatusCode.NOT_FOUND, reason_name(ERROR_REASON_SERVICE_NOT_FOUND)): (
        ServiceNotFoundError
    ),
    (
        grpc.StatusCode.FAILED_PRECONDITION,
        reason_name(ERROR_REASON_CONTAINER_RUNTIME_UNAVAILABLE),
    ): ContainerRuntimeUnavailableError,
    (grpc.StatusCode.FAILED_PRECONDITION, reason_name(ERROR_REASON_WEBHOOK_VETOED)): (
        WebhookVetoedError
    ),
    (grpc.StatusCode.FAILED_PRECONDITION, reason_name(ERROR_REASON_VAULT_LOCKED)): (
        VaultLockedError
    ),
    (grpc.StatusCode.PERMISSION_DENIED, reason_name(ERROR_REASON_VAULT_PASSPHRASE_WRONG)): (
        VaultPassphraseWrongError
    ),
    (grpc.StatusCode.NOT_FOUND, reason_name(ERROR_REASON_SECRET_NOT_FOUND)): SecretNotFoundError,
    (grpc.StatusCode.INVALID_ARGUMENT, reason_name(ERROR_REASON_DEPLOYMENT_INVALID)): (
        DeploymentInvalidError
    ),
    (grpc.StatusCode.NOT_FOUND, reason_name(ERROR_REASON_DEPLOYMENT_NOT_FOUND)): (
        DeploymentNotFoundError
    ),
    (grpc.StatusCode.PERMISSION_DENIED, reason_name(ERROR_REASON_HOST_IDENTITY_MISMATCH)): (
        HostIdentityMismatchError
    ),
    (grpc.StatusCode.PERMISSION_DENIED, reason_name(ERROR_REASON_ROLE_NOT_ALLOWED)): (
        RoleNotAllowedError
    ),
    (grpc.StatusCode.NOT_FOUND, reason_name(ERROR_REASON_HOST_NOT_FOUND)): HostNotFoundError,
    (grpc.StatusCode.NOT_FOUND, reason_name(ERROR_REASON_ROLLOUT_NOT_FOUND)): (
        RolloutNotFoundError
    ),
    (grpc.StatusCode.FAILED_PRECONDITION, reason_name(ERROR_REASON_ROLLOUT_NOT_ACTIVE)): (
        RolloutNotActiveError
    ),
}

_BY_CODE: Mapping[grpc.StatusCode, type[OzwaldError]] = {
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.UNIMPLEMENTED: UnimplementedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.INTERNAL: InternalServerError,
    grpc.StatusCode.UNKNOWN: InternalServerError,
    grpc.StatusCode.DATA_LOSS: InternalServerError,
}


def error_from_rpc(
    error: grpc.RpcError,
    *,
    method: str,
    target: AgentTarget,
    timeout: float | None,
    correlation_id: str | None,
) -> OzwaldError:
    """The OzwaldError for a failed call; raise it `from error`.

    The specific subclass needs both the gRPC code and an "ozwald" ErrorInfo reason it
    knows; otherwise the class follows the code alone. Without an ozwald ErrorInfo the
    error did not come from an Ozwald server's handler (transport failure, deadline,
    unknown method), and the message is written here from what the client knows.
    """
    if not isinstance(error, grpc.Call | grpc.aio.AioRpcError):
        return OzwaldError(f"{method} to {target.display} failed: {error}")
    code = error.code()
    details = error.details() or code.name
    found = _ozwald_status(code, error.trailing_metadata())
    if found is not None:
        info, status = found
        cls = _BY_CODE_AND_REASON.get((code, info.reason)) or _BY_CODE.get(code, OzwaldError)
        metadata = dict(info.metadata)
        result = cls(
            details,
            remedy=metadata.pop(REMEDY_KEY, ""),
            reason=info.reason,
            code=code,
            metadata=metadata,
        )
        if isinstance(result, AdmissionRefusedError):
            result.plan = _refused_plan(status)
        return result
    where = target.display
    peer = target.peer
    look_in_log = f"look in the {peer.name}'s log" + (
        f" for correlation id {correlation_id}" if correlation_id else ""
    )
    if code == grpc.StatusCode.UNAVAILABLE:
        return peer.unreachable(
            f"no Ozwald {peer.name} answers at {where}: {details}",
            remedy=target.unreachable_remedy,
            code=code,
        )
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        within = f" within {timeout:.3g} s" if timeout is not None else ""
        return DeadlineExceededError(
            f"the {peer.name} at {where} did not answer {method}{within}",
            remedy=f"allow it more time (--timeout); if it keeps happening, {look_in_log}",
            code=code,
        )
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return UnimplementedError(
            f"the {peer.name} at {where} does not implement {method}: it is older than this client",
            remedy=f"upgrade {peer.program} on that host to this client's version",
            code=code,
        )
    cls = _BY_CODE.get(code, OzwaldError)
    return cls(
        f"{method} to {where} failed with {code.name}: {details}",
        remedy=look_in_log,
        code=code,
    )


def _ozwald_status(
    code: grpc.StatusCode, trailing_metadata: Iterable[tuple[str, str | bytes]] | None
) -> tuple[error_details_pb2.ErrorInfo, status_pb2.Status] | None:
    """The google.rpc.Status of the call and its ErrorInfo with domain "ozwald", if any.

    Parsed by hand rather than with grpc_status.rpc_status.from_call, which accepts
    neither the exceptions of grpc.aio nor a Status whose code disagrees with the
    call's; such a Status (e.g. rewritten by a proxy) is ignored here instead.
    """
    for key, value in trailing_metadata or ():
        if key != STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        status = status_pb2.Status.FromString(value)
        if status.code != code.value[0]:
            return None
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info) and info.domain == ERROR_DOMAIN:
                return info, status
    return None


def _refused_plan(status: status_pb2.Status) -> plan_pb2.Plan | None:
    for detail in status.details:
        refused = plan_pb2.Plan()
        if detail.Unpack(refused):
            return refused
    return None
