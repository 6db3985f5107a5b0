"""`ozwald webhooks deliveries` end to end against the in-memory fake agent over gRPC,
and how a webhook veto reaches the user (message, hint, exit code 15)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from ozwald.agent.v1 import webhook_delivery_pb2 as W
from ozwald.common.v1 import error_reason_pb2, webhook_pb2
from ozwald.common.v1.host_profile_pb2 import HostProfile

from ozwald_sdk.cli.main import main
from ozwald_sdk.errors import ExitCode
from ozwald_sdk.testing import Failure, FakeAgent, serve_agent
from tests.unit.cli.provisioning_fake import ProvisioningFake


def delivery(attempt: int, outcome: int, code: int, error: str = "") -> W.WebhookDelivery:
    return W.WebhookDelivery(
        delivery_id="d1",
        hook="audit",
        event=webhook_pb2.WEBHOOK_EVENT_POST_PROVISION,
        realm="default",
        service="embed",
        attempt=attempt,
        attempted_at=Timestamp(seconds=1_767_225_600 + attempt),
        status_code=code,
        duration=Duration(nanos=120_000_000),
        error=error,
        outcome=outcome,  # type: ignore[arg-type]
        url="https://hooks.example/a",
    )


@pytest.fixture
def fake(cpu_only_profile: HostProfile) -> Iterator[ProvisioningFake]:
    fake = ProvisioningFake(cpu_only_profile)
    fake.webhooks.deliveries = [
        delivery(2, W.WEBHOOK_DELIVERY_OUTCOME_DELIVERED, 200),
        delivery(1, W.WEBHOOK_DELIVERY_OUTCOME_RETRY_SCHEDULED, 500, "answered HTTP 500: busy"),
    ]
    yield fake
    fake.join()


@pytest.fixture
def address(fake: ProvisioningFake) -> Iterator[str]:
    with serve_agent(fake) as address:
        yield address


def test_deliveries_render_as_a_table(
    address: str, fake: ProvisioningFake, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--agent", address, "webhooks", "deliveries", "--service", "embed"])
    out = capsys.readouterr().out
    assert code == ExitCode.OK
    lines = out.splitlines()
    assert lines[0].split() == [
        "TIME", "(UTC)", "HOOK", "EVENT", "SERVICE", "TRY", "HTTP", "TOOK", "OUTCOME", "ERROR",
    ]  # fmt: skip
    assert lines[1].split() == [
        "2026-01-01", "00:00:02", "audit", "post-provision", "default:embed", "2", "200",
        "0.12s", "delivered", "-",
    ]  # fmt: skip
    assert "retry-scheduled  answ" in lines[2]  # the error column is cut to fit 100 columns
    (request,) = fake.webhooks.requests
    assert (request.service, request.realm, request.limit) == ("embed", "", 50)


def test_deliveries_as_json_and_with_a_limit(
    address: str, fake: ProvisioningFake, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--agent", address, "webhooks", "deliveries", "--limit", "1", "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == ExitCode.OK
    (only,) = document["deliveries"]
    assert only["outcome"] == "WEBHOOK_DELIVERY_OUTCOME_DELIVERED"
    assert only["hook"] == "audit"


@pytest.mark.parametrize(
    "where",
    ["before", "after"],
    ids=["options-before-deliveries", "options-after-deliveries"],
)
def test_connection_options_work_before_and_after_deliveries(
    where: str, address: str, fake: ProvisioningFake, capsys: pytest.CaptureFixture[str]
) -> None:
    connection = ["--agent", address, "--timeout", "7", "--json"]
    command = ["webhooks", "deliveries", "--service", "embed"]
    argv = connection + command if where == "before" else command + connection
    assert main(argv) == ExitCode.OK
    assert len(json.loads(capsys.readouterr().out)["deliveries"]) == 2
    (remaining,) = fake.webhooks.time_remaining
    assert remaining is not None and 5 < remaining < 7.5  # --timeout became the deadline


def test_no_deliveries_says_how_to_subscribe(
    address: str, fake: ProvisioningFake, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.webhooks.deliveries = []
    assert main(["--agent", address, "webhooks", "deliveries"]) == ExitCode.OK
    assert "No webhook deliveries recorded" in capsys.readouterr().out


def test_a_veto_shows_the_hooks_reason_and_exits_15(
    cpu_only_profile: HostProfile, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = FakeAgent(cpu_only_profile)
    agent.fail_next(
        Failure(
            grpc.StatusCode.FAILED_PRECONDITION,
            "nothing changed: webhook 'gate' vetoed pre-provision of default:embed: frozen",
            error_reason_pb2.ERROR_REASON_WEBHOOK_VETOED,
            "address what webhook 'gate' objects to, then try again",
            {"hook": "gate", "hook_reason": "frozen"},
        )
    )
    with serve_agent(agent) as address:
        code = main(["--agent", address, "host"])
    err = capsys.readouterr().err
    assert code == ExitCode.WEBHOOK_VETOED
    assert int(ExitCode.WEBHOOK_VETOED) == 15
    assert "error: nothing changed: webhook 'gate' vetoed pre-provision" in err
    assert "hint: address what webhook 'gate' objects to" in err
