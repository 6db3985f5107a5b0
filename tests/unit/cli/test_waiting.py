"""ozwald_sdk.waiting without the CLI: one SDK call that waits for an update's outcome."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ozwald.agent.v1 import service_status_pb2 as S
from ozwald.common.v1.host_profile_pb2 import HostProfile
from ozwald.common.v1.service_spec_pb2 import ServiceSpec

from ozwald_sdk.agent_client import AgentClient
from ozwald_sdk.errors import ExitCode
from ozwald_sdk.testing import serve_agent
from ozwald_sdk.waiting import (
    ServiceStartFailedError,
    WaitTimedOutError,
    expected_fingerprints,
    wait_until_ready,
    wait_until_stopped,
)
from tests.unit.cli.provisioning_fake import STARTS_FINE, ProvisioningFake, Step

WEB = ServiceSpec(realm="default", name="web", image="ozwald/tiny:local")
WORKER = ServiceSpec(realm="default", name="worker", image="ozwald/tiny:local")


@pytest.fixture
def fake(cpu_only_profile: HostProfile) -> Iterator[ProvisioningFake]:
    fake = ProvisioningFake(cpu_only_profile, event_gap=0.02)
    yield fake
    fake.join()


@pytest.fixture
def client(fake: ProvisioningFake) -> Iterator[AgentClient]:
    with serve_agent(fake) as address, AgentClient(address, timeout=5) as client:
        yield client


def test_ready_returns_each_status_and_tells_each_change_once(
    client: AgentClient, fake: ProvisioningFake
) -> None:
    fake.scripts["web"] = (
        Step(S.INSTANCE_STATE_CREATING, "creating its container"),
        Step(S.INSTANCE_STATE_STARTING, "container started"),
        Step(S.INSTANCE_STATE_STARTING, "container started"),  # e.g. a new endpoint
        Step(S.INSTANCE_STATE_READY, "health check passed"),
    )
    response = client.apply_services([WEB, WORKER])
    told: list[tuple[str, int]] = []

    statuses = wait_until_ready(
        client,
        expected_fingerprints(response.plan),
        response.event_sequence,
        timeout=5,
        on_event=lambda status: told.append((status.name, status.state)),
    )

    assert {key: s.state for key, s in statuses.items()} == {
        ("default", "web"): S.INSTANCE_STATE_READY,
        ("default", "worker"): S.INSTANCE_STATE_READY,
    }
    assert [state for name, state in told if name == "web"] == [
        S.INSTANCE_STATE_CREATING,
        S.INSTANCE_STATE_STARTING,
        S.INSTANCE_STATE_READY,
    ]


def test_a_failure_raises_with_the_status_and_its_log_lines(
    client: AgentClient, fake: ProvisioningFake
) -> None:
    fake.scripts["web"] = (
        Step(S.INSTANCE_STATE_FAILED, "health check never passed", log_lines=("no config",)),
    )
    response = client.apply_services([WEB])

    with pytest.raises(ServiceStartFailedError) as failed:
        wait_until_ready(client, [("default", "web")], response.event_sequence, timeout=5)

    assert failed.value.exit_code == ExitCode.SERVICE_FAILED
    assert list(failed.value.status.last_log_lines) == ["no config"]
    assert failed.value.message == (
        "default:web failed: health check never passed; its last log lines:\n    no config"
    )


def test_a_timeout_says_which_services_are_not_ready(
    client: AgentClient, fake: ProvisioningFake
) -> None:
    fake.scripts["web"] = (Step(S.INSTANCE_STATE_STARTING, "waiting for health"),)
    response = client.apply_services([WEB, WORKER])

    with pytest.raises(WaitTimedOutError) as timed_out:
        wait_until_ready(
            client, expected_fingerprints(response.plan), response.event_sequence, timeout=0.4
        )

    assert timed_out.value.exit_code == ExitCode.DEADLINE_EXCEEDED
    pending = timed_out.value.pending
    assert list(pending) == [("default", "web")]
    assert pending[("default", "web")] is not None
    assert "default:web STARTING (waiting for health)" in timed_out.value.message


def test_stopped_counts_services_that_are_already_gone(
    client: AgentClient, fake: ProvisioningFake
) -> None:
    fake.event_gap = 0.0
    client.apply_services([WEB])
    response = client.stop_services([("default", "web")])

    result = wait_until_stopped(
        client, [("default", "web"), ("default", "never-ran")], response.event_sequence, 5
    )

    assert result[("default", "never-ran")] is None
    web = result[("default", "web")]
    assert web is not None
    assert web.state == S.INSTANCE_STATE_STOPPED


def test_a_failure_from_before_the_update_is_not_its_outcome(
    client: AgentClient, fake: ProvisioningFake
) -> None:
    # A pass that began before the apply fails the old attempt; the next pass retries.
    fake.scripts["web"] = (
        Step(S.INSTANCE_STATE_FAILED, "health check never passed", stale=True),
        *STARTS_FINE,
    )
    response = client.apply_services([WEB])
    assert response.generation == 1

    statuses = wait_until_ready(
        client,
        expected_fingerprints(response.plan),
        response.event_sequence,
        timeout=5,
        generation=response.generation,
    )

    assert statuses[("default", "web")].state == S.INSTANCE_STATE_READY


def test_without_the_generation_a_stale_failure_would_end_the_wait(
    client: AgentClient, fake: ProvisioningFake
) -> None:
    fake.scripts["web"] = (
        Step(S.INSTANCE_STATE_FAILED, "health check never passed", stale=True),
        *STARTS_FINE,
    )
    response = client.apply_services([WEB])
    with pytest.raises(ServiceStartFailedError):
        wait_until_ready(
            client, expected_fingerprints(response.plan), response.event_sequence, timeout=5
        )
