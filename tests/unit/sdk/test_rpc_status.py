"""The server side of the error contract, as any client (of any language) sees it."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status as grpc_rpc_status
from ozwald.agent.v1 import agent_service_pb2, agent_service_pb2_grpc
from ozwald.common.v1 import error_reason_pb2

from ozwald_sdk import rpc_status
from ozwald_sdk.metadata import reason_name
from ozwald_sdk.testing import Failure, FakeAgent, serve_agent


def test_abort_sends_status_with_ozwald_error_info_over_the_wire() -> None:
    fake = FakeAgent()
    fake.fail_next(
        Failure(
            grpc.StatusCode.INVALID_ARGUMENT,
            "watch interval 0.2 s is out of range",
            error_reason_pb2.ERROR_REASON_INVALID_ARGUMENT,
            remedy="ask for an interval between 1 s and 3600 s",
            metadata={"field": "interval"},
        )
    )
    with serve_agent(fake) as address, grpc.insecure_channel(address) as channel:
        stub = agent_service_pb2_grpc.AgentServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.GetHostProfile(agent_service_pb2.GetHostProfileRequest(), timeout=5)

    error = raised.value
    assert isinstance(error, grpc.Call)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = grpc_rpc_status.from_call(error)
    assert status is not None
    assert status.message == "watch interval 0.2 s is out of range"
    [detail] = status.details
    info = error_details_pb2.ErrorInfo()
    assert detail.Unpack(info)
    assert info.domain == "ozwald"
    assert info.reason == "INVALID_ARGUMENT"
    assert dict(info.metadata) == {
        "remedy": "ask for an interval between 1 s and 3600 s",
        "field": "interval",
    }


def test_reason_on_the_wire_is_the_enum_name_without_prefix() -> None:
    names = {
        reason_name(value)
        for value in error_reason_pb2.ErrorReason.values()
        if value != error_reason_pb2.ERROR_REASON_UNSPECIFIED
    }
    assert names == {
        "INVALID_ARGUMENT",
        "HOST_PROFILE_FAILED",
        "SHUTTING_DOWN",
        "ADMISSION_REFUSED",
        "WEBHOOK_VETOED",
        "SERVICE_NOT_FOUND",
        "CONTAINER_RUNTIME_UNAVAILABLE",
        "VAULT_LOCKED",
        "VAULT_PASSPHRASE_WRONG",
        "SECRET_NOT_FOUND",
        "VOLUME_NOT_FOUND",
        "DEPLOYMENT_INVALID",
        "DEPLOYMENT_NOT_FOUND",
        "HOST_IDENTITY_MISMATCH",
        "ROLE_NOT_ALLOWED",
        "HOST_NOT_FOUND",
        "ROLLOUT_NOT_FOUND",
        "ROLLOUT_NOT_ACTIVE",
    }


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (grpc.StatusCode.OK, error_reason_pb2.ERROR_REASON_INVALID_ARGUMENT),
        (grpc.StatusCode.INTERNAL, error_reason_pb2.ERROR_REASON_UNSPECIFIED),
    ],
)
def test_status_error_refuses_what_clients_could_not_interpret(
    code: grpc.StatusCode, reason: error_reason_pb2.ErrorReason.ValueType
) -> None:
    with pytest.raises(ValueError):
        rpc_status.status_error(code, reason, "message", "remedy")
