"""Failed calls become the right OzwaldError: specific only when code and reason match."""

from __future__ import annotations

import shutil
import tempfile
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status as grpc_rpc_status
from ozwald.agent.v1.agent_service_pb2 import GetHostProfileRequest, GetHostProfileResponse
from ozwald.common.v1 import error_reason_pb2

from ozwald_sdk.agent_client import AgentClient
from ozwald_sdk.errors import (
    ExitCode,
    HostProfileFailedError,
    InternalServerError,
    InvalidArgumentError,
    OzwaldError,
    PermissionDeniedError,
    RoleNotAllowedError,
    ShuttingDownError,
    UnavailableError,
    UnimplementedError,
)
from ozwald_sdk.retry import RetryPolicy
from ozwald_sdk.testing import Failure, FakeAgent, serve_agent

FAST_RETRY = RetryPolicy(max_attempts=2, initial_backoff=0.01, max_backoff=0.01)


def _fail_once(failure: Failure, *, times: int = 1) -> OzwaldError:
    fake = FakeAgent()
    fake.fail_next(failure, times=times)
    with (
        serve_agent(fake) as address,
        AgentClient(address, retry=FAST_RETRY) as client,
        pytest.raises(OzwaldError) as raised,
    ):
        client.get_host_profile()
    return raised.value


@pytest.mark.parametrize(
    ("code", "reason", "expected", "exit_code"),
    [
        (
            grpc.StatusCode.INVALID_ARGUMENT,
            error_reason_pb2.ERROR_REASON_INVALID_ARGUMENT,
            InvalidArgumentError,
            ExitCode.INVALID_ARGUMENT,
        ),
        (
            grpc.StatusCode.INTERNAL,
            error_reason_pb2.ERROR_REASON_HOST_PROFILE_FAILED,
            HostProfileFailedError,
            ExitCode.FAILURE,
        ),
        (
            grpc.StatusCode.UNAVAILABLE,
            error_reason_pb2.ERROR_REASON_SHUTTING_DOWN,
            ShuttingDownError,
            ExitCode.AGENT_UNREACHABLE,
        ),
    ],
)
def test_known_code_and_reason_raise_the_specific_class_with_message_and_remedy(
    code: grpc.StatusCode,
    reason: error_reason_pb2.ErrorReason.ValueType,
    expected: type[OzwaldError],
    exit_code: ExitCode,
) -> None:
    error = _fail_once(
        Failure(code, "what went wrong", reason, remedy="what to do", metadata={"field": "x"}),
        times=FAST_RETRY.max_attempts,
    )
    assert type(error) is expected
    assert error.exit_code == exit_code
    assert error.code == code
    assert error.message == "what went wrong"
    assert error.remedy == "what to do"
    assert error.metadata == {"field": "x"}
    assert isinstance(error.__cause__, grpc.RpcError)


def test_invalid_argument_names_the_field() -> None:
    error = _fail_once(
        Failure(
            grpc.StatusCode.INVALID_ARGUMENT,
            "bad",
            error_reason_pb2.ERROR_REASON_INVALID_ARGUMENT,
            metadata={"field": "interval"},
        )
    )
    assert isinstance(error, InvalidArgumentError)
    assert error.field == "interval"


def test_known_reason_with_another_code_gets_the_generic_class_of_the_code() -> None:
    error = _fail_once(
        Failure(
            grpc.StatusCode.INVALID_ARGUMENT,
            "odd pairing",
            error_reason_pb2.ERROR_REASON_HOST_PROFILE_FAILED,
            remedy="r",
        )
    )
    assert type(error) is InvalidArgumentError
    assert error.reason == "HOST_PROFILE_FAILED"
    assert error.remedy == "r"


class _NewerAgent(FakeAgent):
    """An agent that knows reasons (or domains) this client has never heard of."""

    def __init__(
        self, domain: str, reason: str, code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    ) -> None:
        super().__init__()
        self._code = code
        self._info = error_details_pb2.ErrorInfo(
            domain=domain, reason=reason, metadata={"remedy": "cool the disk"}
        )

    def GetHostProfile(
        self, request: GetHostProfileRequest, context: grpc.ServicerContext
    ) -> GetHostProfileResponse:
        status = status_pb2.Status(code=self._code.value[0], message="disk on fire")
        status.details.add().Pack(self._info)
        context.abort_with_status(grpc_rpc_status.to_status(status))


def test_unknown_reason_gets_the_generic_class_and_keeps_the_server_words() -> None:
    fake = _NewerAgent("ozwald", "DISK_ON_FIRE")
    with (
        serve_agent(fake) as address,
        AgentClient(address) as client,
        pytest.raises(OzwaldError) as raised,
    ):
        client.get_host_profile()
    assert type(raised.value) is InternalServerError
    assert raised.value.reason == "DISK_ON_FIRE"
    assert raised.value.message == "disk on fire"
    assert raised.value.remedy == "cool the disk"


def test_error_info_of_another_domain_is_not_ozwald_s_word() -> None:
    fake = _NewerAgent("example.com", "HOST_PROFILE_FAILED")
    with (
        serve_agent(fake) as address,
        AgentClient(address, correlation_id="c0ffee") as client,
        pytest.raises(OzwaldError) as raised,
    ):
        client.get_host_profile()
    assert type(raised.value) is InternalServerError
    assert raised.value.reason == ""
    assert "disk on fire" in raised.value.message
    assert "c0ffee" in raised.value.remedy


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (grpc.StatusCode.INTERNAL, InternalServerError),
        (grpc.StatusCode.UNKNOWN, InternalServerError),
        (grpc.StatusCode.PERMISSION_DENIED, PermissionDeniedError),
        (grpc.StatusCode.NOT_FOUND, OzwaldError),
    ],
)
def test_status_without_details_gets_the_generic_class_and_a_message_naming_the_call(
    code: grpc.StatusCode, expected: type[OzwaldError]
) -> None:
    error = _fail_once(Failure(code, "no details here"))
    assert type(error) is expected
    assert error.code == code
    assert "GetHostProfile" in error.message
    assert "no details here" in error.message
    assert error.remedy


def test_server_without_the_method_means_the_agent_is_too_old() -> None:
    socket = Path(tempfile.mkdtemp(prefix="oz-", dir="/tmp")) / "old-agent.sock"
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    server.add_insecure_port(f"unix:{socket}")
    server.start()
    try:
        with AgentClient(str(socket)) as client, pytest.raises(UnimplementedError) as raised:
            client.get_host_profile()
    finally:
        server.stop(None)
        shutil.rmtree(socket.parent)
    assert raised.value.exit_code == ExitCode.AGENT_TOO_OLD
    assert "GetHostProfile" in raised.value.message
    assert "upgrade" in raised.value.remedy


def test_unavailable_with_an_unknown_reason_is_not_an_unreachable_agent() -> None:
    fake = _NewerAgent("ozwald", "BUSY_REBALANCING", grpc.StatusCode.UNAVAILABLE)
    with (
        serve_agent(fake) as address,
        AgentClient(address, retry=FAST_RETRY) as client,
        pytest.raises(OzwaldError) as raised,
    ):
        client.get_host_profile()
    assert type(raised.value) is UnavailableError
    assert raised.value.remedy == "cool the disk"


def test_a_role_the_service_does_not_take_is_a_permission_error_naming_both_roles() -> None:
    error = _fail_once(
        Failure(
            grpc.StatusCode.PERMISSION_DENIED,
            "FleetService over TCP is for operators",
            error_reason_pb2.ERROR_REASON_ROLE_NOT_ALLOWED,
            remedy="use an operator certificate",
            metadata={"role": "agent", "required": "operator"},
        )
    )
    assert type(error) is RoleNotAllowedError
    assert isinstance(error, PermissionDeniedError)
    assert error.exit_code == ExitCode.PERMISSION_DENIED
    assert (error.role, error.required) == ("agent", "operator")
