"""Webhooks against a real agent, the real Docker Engine and a real HTTP receiver on
127.0.0.1: signatures, vetoes that leave nothing behind, retries, timeouts, receivers
that are down, health and failure events."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from ozwald.agent.v1 import plan_pb2
from ozwald.agent.v1 import webhook_delivery_pb2 as W
from ozwald.common.v1 import webhook_pb2

from ozwald_sdk.agent_client import AgentClient
from ozwald_sdk.cli.main import main
from ozwald_sdk.errors import ExitCode, WebhookVetoedError
from ozwald_sdk.webhooks import SCHEMA
from tests.integration.agent_process import RunningAgent, start_agent
from tests.integration.provisioning_support import (
    TINY_IMAGE,
    S,
    all_in,
    container_id,
    specs,
    statuses,
    wait_for,
)
from tests.integration.webhook_receiver import Answer, Receiver, running_receiver

READY = S.INSTANCE_STATE_READY
FAILED = S.INSTANCE_STATE_FAILED
KEY = b"integration-signing-key"
WEB = f"""\
        image: {TINY_IMAGE}
        connector_port: 8080
        entrypoint: [sh, -c]
        command: ["exec httpd -f -p 8080 -h /www"]
        health_check: {{http: {{path: /healthz}}, start_period: 0s, interval: 1s, retries: 3}}
        resources: {{memory: 32MiB, cpus: 0.1}}
"""


pytestmark = pytest.mark.usefixtures("tiny_image")


@pytest.fixture
def agent(workdir: Path, realm: str) -> Iterator[RunningAgent]:
    running = start_agent(workdir)
    yield running
    code = running.terminate()
    assert code == 0, f"agent exited with {code} on SIGTERM:\n{running.logs()}"


@pytest.fixture
def client(agent: RunningAgent) -> Iterator[AgentClient]:
    with AgentClient(agent.target, timeout=30) as c:
        yield c


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver(KEY) as r:
        yield r


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write(workdir: Path, realm: str, hooks: dict[str, str], services: dict[str, str]) -> Path:
    """An ozwald.yml: `hooks` name -> flow map body, `services` name -> YAML body."""
    (workdir / "hook.key").write_bytes(KEY + b"\n")
    text = f"version: 1\nrealms:\n  {realm}:\n    webhooks:\n"
    for name, body in hooks.items():
        text += f"      {name}: {{signing_key_file: ./hook.key, {body}}}\n"
    text += "    services:\n"
    for name, body in services.items():
        text += f"      {name}:\n{body}"
    path = workdir / "ozwald.yml"
    path.write_text(text)
    return path


def assert_all_signed(receiver: Receiver) -> None:
    assert receiver.received, "nothing was delivered"
    for item in receiver.received:
        assert item.signature_error is None, item
        assert item.document["schema"] == SCHEMA
        assert item.document["event"] == item.event
        assert item.document["delivery_id"] == item.delivery_id


def deliveries(client: AgentClient, realm: str, hook: str) -> list[W.WebhookDelivery]:
    return [d for d in reversed(client.list_webhook_deliveries(realm=realm)) if d.hook == hook]


def no_docker_objects(realm: str) -> None:
    engine = docker.from_env()
    assert engine.containers.list(all=True, filters={"label": f"ozwald.realm={realm}"}) == []
    assert engine.networks.list(filters={"label": f"ozwald.realm={realm}"}) == []


def test_a_pre_provision_veto_refuses_the_apply_and_changes_nothing(
    client: AgentClient,
    *,
    agent: RunningAgent,
    receiver: Receiver,
    realm: str,
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    receiver.script["/gate"] = [Answer(403, json.dumps({"reason": "change freeze\nuntil Monday"}))]
    config = write(
        workdir,
        realm,
        {"gate": f"url: '{receiver.url('/gate')}', events: [pre-provision], timeout: 1s"},
        {"web": WEB + "        webhooks: [gate]\n"},
    )
    code = main(["--agent", agent.target, "update_services", "--config", str(config), "web"])
    err = capsys.readouterr().err
    assert code == ExitCode.WEBHOOK_VETOED
    assert int(ExitCode.WEBHOOK_VETOED) == 15
    assert "webhook 'gate' vetoed pre-provision" in err
    assert "change freeze until Monday" in err  # the hook's reason, on one line
    assert statuses(client, realm) == {}
    no_docker_objects(realm)
    (sent,) = receiver.on("/gate", "pre-provision")
    assert sent.document["action"] == "start"
    assert sent.document["service"] == "web"
    assert_all_signed(receiver)
    (logged,) = deliveries(client, realm, "gate")
    assert logged.outcome == W.WEBHOOK_DELIVERY_OUTCOME_VETOED
    assert logged.status_code == 403
    assert logged.event == webhook_pb2.WEBHOOK_EVENT_PRE_PROVISION

    with pytest.raises(WebhookVetoedError) as refused:
        client.apply_services(specs(client, config, "web"))
    assert refused.value.hook == "gate"
    assert refused.value.service == f"{realm}:web"
    assert refused.value.hook_reason == "change freeze until Monday"
    time.sleep(1.0)  # a reconcile pass or two: still nothing
    no_docker_objects(realm)


def test_post_provision_is_delivered_signed_after_ready(
    client: AgentClient, receiver: Receiver, realm: str, workdir: Path
) -> None:
    config = write(
        workdir,
        realm,
        {"audit": f"url: '{receiver.url('/audit')}', events: [pre-provision, post-provision]"},
        {"web": WEB + "        webhooks: [audit]\n"},
    )
    applied = client.apply_services(specs(client, config, "web"))
    wait_for(client, realm, all_in(READY, "web"))
    (post,) = receiver.wait_for("/audit", "post-provision")
    (pre,) = receiver.on("/audit", "pre-provision")
    assert pre.arrived < post.arrived
    assert_all_signed(receiver)
    doc = post.document
    assert doc["state"] == "READY"
    assert doc["realm"] == realm and doc["service"] == "web"
    assert doc["container_id"] == container_id(realm, "web")
    assert doc["generation"] == applied.generation
    assert doc["host"]
    outcomes = [d.outcome for d in deliveries(client, realm, "audit")]
    assert outcomes == [W.WEBHOOK_DELIVERY_OUTCOME_DELIVERED] * 2

    # A changed hook set is not a changed service: no restart, no new pre-provision.
    config = write(
        workdir,
        realm,
        {"audit": f"url: '{receiver.url('/audit2')}', events: [pre-provision, post-provision]"},
        {"web": WEB + "        webhooks: [audit]\n"},
    )
    before = container_id(realm, "web")
    (action,) = client.apply_services(specs(client, config, "web")).plan.actions
    assert action.kind == plan_pb2.ACTION_KIND_KEEP
    assert container_id(realm, "web") == before
    assert receiver.on("/audit2") == []


def test_a_failing_post_event_is_retried_with_growing_gaps(
    client: AgentClient, receiver: Receiver, realm: str, workdir: Path
) -> None:
    receiver.script["/flaky"] = [Answer(500, "busy"), Answer(500, "busy"), Answer(200)]
    config = write(
        workdir,
        realm,
        {"flaky": f"url: '{receiver.url('/flaky')}', events: [post-provision], retries: 3"},
        {"web": WEB + "        webhooks: [flaky]\n"},
    )
    client.apply_services(specs(client, config, "web"))
    wait_for(client, realm, all_in(READY, "web"))
    tries = receiver.wait_for("/flaky", "post-provision", count=3)
    assert len({t.delivery_id for t in tries}) == 1
    assert [t.document["attempt"] for t in tries] == [1, 2, 3]
    first_gap = tries[1].arrived - tries[0].arrived
    second_gap = tries[2].arrived - tries[1].arrived
    assert 0.4 <= first_gap <= second_gap, (first_gap, second_gap)
    assert_all_signed(receiver)
    deadline = time.monotonic() + 5
    while len(logged := deliveries(client, realm, "flaky")) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [(d.attempt, d.status_code, d.outcome) for d in logged] == [
        (1, 500, W.WEBHOOK_DELIVERY_OUTCOME_RETRY_SCHEDULED),
        (2, 500, W.WEBHOOK_DELIVERY_OUTCOME_RETRY_SCHEDULED),
        (3, 200, W.WEBHOOK_DELIVERY_OUTCOME_DELIVERED),
    ]
    assert "HTTP 500" in logged[0].error


def test_a_slow_pre_hook_times_out_and_its_policy_decides(
    client: AgentClient, receiver: Receiver, realm: str, workdir: Path
) -> None:
    receiver.script["/slow"] = [Answer(200, delay_s=3.0)]
    slow = f"url: '{receiver.url('/slow')}', events: [pre-provision], timeout: 1s"
    config = write(
        workdir,
        realm,
        {
            "slow-open": slow + ", failure_policy: fail-open",
            "slow-closed": slow + ", failure_policy: fail-closed",
        },
        {
            "web": WEB + "        webhooks: [slow-open]\n",
            "other": WEB + "        webhooks: [slow-closed]\n",
        },
    )
    started = time.monotonic()
    client.apply_services(specs(client, config, "web"))
    assert time.monotonic() - started < 2.5  # bounded by the hook's timeout
    wait_for(client, realm, all_in(READY, "web"))
    (open_attempt,) = deliveries(client, realm, "slow-open")
    assert open_attempt.outcome == W.WEBHOOK_DELIVERY_OUTCOME_FAILED_OPEN
    assert "timed out" in open_attempt.error
    assert 0.9 <= open_attempt.duration.ToTimedelta().total_seconds() < 2.5

    with pytest.raises(WebhookVetoedError) as refused:
        client.apply_services(specs(client, config, "web", "other"))
    assert refused.value.hook == "slow-closed"
    assert "timed out" in refused.value.hook_reason
    assert set(statuses(client, realm)) == {"web"}
    (closed_attempt,) = deliveries(client, realm, "slow-closed")
    assert closed_attempt.outcome == W.WEBHOOK_DELIVERY_OUTCOME_FAILED_CLOSED


def test_a_receiver_that_is_down_is_handled_as_configured(
    client: AgentClient, realm: str, workdir: Path
) -> None:
    down = f"url: 'http://127.0.0.1:{_closed_port()}/hook', events: [pre-provision], timeout: 1s"
    config = write(
        workdir,
        realm,
        {"down-open": down + ", failure_policy: fail-open", "down-closed": down},
        {
            "web": WEB + "        webhooks: [down-open]\n",
            "other": WEB + "        webhooks: [down-closed]\n",
        },
    )
    with pytest.raises(WebhookVetoedError) as refused:
        client.apply_services(specs(client, config, "other"))
    assert "cannot reach" in refused.value.hook_reason
    assert "fail-closed" in refused.value.message
    no_docker_objects(realm)
    client.apply_services(specs(client, config, "web"))
    wait_for(client, realm, all_in(READY, "web"))
    (logged,) = deliveries(client, realm, "down-open")
    assert logged.outcome == W.WEBHOOK_DELIVERY_OUTCOME_FAILED_OPEN
    assert logged.status_code == 0


def test_health_changed_and_failed_are_delivered(
    client: AgentClient, receiver: Receiver, realm: str, workdir: Path
) -> None:
    config = write(
        workdir,
        realm,
        {"health": f"url: '{receiver.url('/health')}', events: [health-changed, failed]"},
        {
            "web": WEB + "        webhooks: [health]\n",
            "broken": f"""\
        image: {TINY_IMAGE}
        entrypoint: [sh, -c]
        command: ["echo giving up; exit 3"]
        restart: {{policy: "no"}}
        webhooks: [health]
""",
        },
    )
    client.apply_services(specs(client, config, "web", "broken"))
    wait_for(client, realm, lambda seen: seen.get("web", S.InstanceStatus()).state == READY)
    (failed,) = receiver.wait_for("/health", "failed")
    assert failed.document["service"] == "broken"
    assert failed.document["state"] == "FAILED"

    docker.from_env().containers.get(container_id(realm, "web")).kill()
    changes = receiver.wait_for("/health", "health-changed", count=2, timeout=30)
    assert changes[0].document["previous_state"] == "READY"
    assert changes[0].document["state"] in ("RESTARTING", "UNHEALTHY")
    assert changes[1].document["state"] == "READY"
    assert_all_signed(receiver)


def test_a_pre_deprovision_veto_keeps_the_service_running(
    client: AgentClient,
    *,
    agent: RunningAgent,
    receiver: Receiver,
    realm: str,
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    receiver.script["/keep"] = [Answer(409, "customers are still connected")]
    config = write(
        workdir,
        realm,
        {"keep": f"url: '{receiver.url('/keep')}', events: [pre-deprovision, post-deprovision]"},
        {"web": WEB + "        webhooks: [keep]\n"},
    )
    client.apply_services(specs(client, config, "web"))
    wait_for(client, realm, all_in(READY, "web"))
    running = container_id(realm, "web")

    code = main(["--agent", agent.target, "down", f"{realm}:web"])
    assert code == ExitCode.WEBHOOK_VETOED
    assert "customers are still connected" in capsys.readouterr().err
    with pytest.raises(WebhookVetoedError):
        client.apply_services([])
    time.sleep(1.0)
    assert statuses(client, realm)["web"].state == READY
    assert container_id(realm, "web") == running
    assert docker.from_env().containers.get(running).status == "running"
    assert len(receiver.on("/keep", "pre-deprovision")) == 2
    assert receiver.on("/keep", "post-deprovision") == []

    receiver.script["/keep"] = [Answer(204)]
    client.stop_services([(realm, "web")])
    receiver.wait_for("/keep", "post-deprovision")
    assert_all_signed(receiver)
