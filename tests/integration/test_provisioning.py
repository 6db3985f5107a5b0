"""Provisioning on one host: a real agent, the real Docker Engine, the local tiny image."""

from __future__ import annotations

import os
import signal
import socket
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from ozwald.agent.v1 import plan_pb2, service_scope_pb2

from ozwald_sdk.agent_client import AgentClient
from ozwald_sdk.errors import AdmissionRefusedError, ContainerRuntimeUnavailableError
from tests.integration.agent_process import RunningAgent, start_agent
from tests.integration.provisioning_support import (
    TINY_IMAGE,
    S,
    all_in,
    container_id,
    specs,
    statuses,
    wait_for,
    write_config,
)
from tests.support.unix_proxy import UnixProxy

READY = S.INSTANCE_STATE_READY
FAILED = S.INSTANCE_STATE_FAILED

WEB_AND_CLIENT = f"""\
    services:
      web:
        image: {TINY_IMAGE}
        connector_port: 8080
        entrypoint: [sh, -c]
        command: ["exec httpd -f -vv -p 8080 -h /www"]
        environment: {{COLOR: blue}}
        health_check: {{http: {{path: /healthz}}, start_period: 0s, interval: 1s, retries: 5}}
        resources: {{memory: 32MiB, cpus: 0.1}}
        profiles:
          red:
            environment: {{COLOR: red}}
      client:
        image: {TINY_IMAGE}
        depends_on: [web]
        entrypoint: [sh, -c]
        command: ["while true; do sleep 1; done"]
        resources: {{memory: 32MiB, cpus: 0.1}}
"""


pytestmark = pytest.mark.usefixtures("tiny_image")


@pytest.fixture
def agent(workdir: Path, realm: str) -> Iterator[RunningAgent]:
    """The agent, stopped before `realm` is cleaned up: a live agent would recreate what the
    cleanup removes."""
    running = start_agent(workdir)
    yield running
    code = running.terminate()
    assert code == 0, f"agent exited with {code} on SIGTERM:\n{running.logs()}"


@pytest.fixture
def client(agent: RunningAgent) -> Iterator[AgentClient]:
    with AgentClient(agent.target, timeout=30) as c:
        yield c


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_services_start_in_dependency_order_and_reach_each_other_by_name(
    client: AgentClient, realm: str, workdir: Path
) -> None:
    port = _free_port()
    config = write_config(
        workdir,
        realm,
        f"    portals:\n      web-api: {{service: web, host_port: {port}}}\n" + WEB_AND_CLIENT,
    )
    applied = client.apply_services(specs(client, config, "web", "client"))
    assert [a.kind for a in applied.plan.actions] == [plan_pb2.ACTION_KIND_START] * 2
    seen = wait_for(client, realm, all_in(READY, "web", "client"))
    assert seen["web"].endpoints == [f"127.0.0.1:{port}"]

    engine = docker.from_env()
    client_container = engine.containers.get(container_id(realm, "client"))
    result = client_container.exec_run(["wget", "-q", "-O", "-", "http://web:8080/healthz"])
    assert result.exit_code == 0, result.output
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
        assert answer.status == 200

    web = engine.containers.get(container_id(realm, "web"))
    assert web.attrs["HostConfig"]["CapDrop"] == ["ALL"]
    assert "no-new-privileges:true" in web.attrs["HostConfig"]["SecurityOpt"]
    assert web.attrs["HostConfig"]["Memory"] == 32 * 1024 * 1024


def test_reapplying_changes_nothing_and_a_profile_change_restarts_only_that_service(
    client: AgentClient, realm: str, workdir: Path
) -> None:
    config = write_config(workdir, realm, WEB_AND_CLIENT)
    client.apply_services(specs(client, config, "web", "client"))
    wait_for(client, realm, all_in(READY, "web", "client"))
    web_id, client_id = container_id(realm, "web"), container_id(realm, "client")

    again = client.apply_services(specs(client, config, "web", "client"))
    assert {a.kind for a in again.plan.actions} == {plan_pb2.ACTION_KIND_KEEP}
    assert (container_id(realm, "web"), container_id(realm, "client")) == (web_id, client_id)

    changed = client.apply_services(specs(client, config, "web[][red]", "client"))
    kinds = {a.name: a.kind for a in changed.plan.actions}
    assert kinds == {"web": plan_pb2.ACTION_KIND_RESTART, "client": plan_pb2.ACTION_KIND_KEEP}
    wait_for(
        client,
        realm,
        lambda seen: (
            "web" in seen
            and seen["web"].state == READY
            and seen["web"].profile == "red"
            and container_id(realm, "web") != web_id
        ),
    )
    assert container_id(realm, "client") == client_id
    web = docker.from_env().containers.get(container_id(realm, "web"))
    assert "COLOR=red" in web.attrs["Config"]["Env"]


def test_a_service_left_out_of_the_set_is_stopped_and_removed(
    client: AgentClient, realm: str, workdir: Path
) -> None:
    config = write_config(workdir, realm, WEB_AND_CLIENT)
    client.apply_services(specs(client, config, "web", "client"))
    wait_for(client, realm, all_in(READY, "web", "client"))
    client.apply_services(specs(client, config, "web"))
    wait_for(client, realm, lambda seen: set(seen) == {"web"})
    engine = docker.from_env()
    assert engine.containers.list(
        ignore_removed=True, all=True, filters={"label": f"ozwald.realm={realm}"}
    )
    assert not engine.containers.list(
        ignore_removed=True,
        all=True,
        filters={"label": [f"ozwald.realm={realm}", "ozwald.service=client"]},
    )


def test_a_container_that_exits_while_starting_fails_with_its_last_log_lines(
    client: AgentClient, realm: str, workdir: Path
) -> None:
    config = write_config(
        workdir,
        realm,
        f"""\
    services:
      broken:
        image: {TINY_IMAGE}
        entrypoint: [sh, -c]
        command: ["echo model file missing >&2; exit 3"]
        health_check: {{http: {{path: /healthz, port: 8080}}, interval: 1s}}
""",
    )
    client.apply_services(specs(client, config, "broken"))
    seen = wait_for(client, realm, all_in(FAILED, "broken"))
    assert seen["broken"].reason == "exited with code 3 while starting"
    assert "model file missing" in "\n".join(seen["broken"].last_log_lines)
    # Its container is gone; the agent serves the lines it kept.
    assert b"model file missing" in b"".join(client.service_logs(realm, "broken"))
    assert seen["broken"].state != READY


def test_a_health_check_that_never_passes_fails_the_service(
    client: AgentClient, realm: str, workdir: Path
) -> None:
    config = write_config(
        workdir,
        realm,
        f"""\
    services:
      sick:
        image: {TINY_IMAGE}
        connector_port: 8080
        entrypoint: [sh, -c]
        command: ["exec httpd -f -p 8080 -h /www"]
        health_check: {{http: {{path: /no-such-page}}, start_period: 0s, interval: 1s, retries: 2}}
""",
    )
    client.apply_services(specs(client, config, "sick"))
    seen = wait_for(client, realm, all_in(FAILED, "sick"))
    assert seen["sick"].reason.startswith("health check never passed: HTTP 404")
    assert not docker.from_env().containers.list(
        ignore_removed=True, all=True, filters={"label": f"ozwald.realm={realm}"}
    )


def test_a_crash_after_ready_is_healed_with_a_restart(
    client: AgentClient, realm: str, workdir: Path
) -> None:
    config = write_config(
        workdir,
        realm,
        f"""\
    services:
      flaky:
        image: {TINY_IMAGE}
        connector_port: 8080
        entrypoint: [sh, -c]
        command: ["httpd -f -p 8080 -h /www & sleep 3; exit 1"]
        health_check: {{http: {{path: /healthz}}, start_period: 0s, interval: 1s}}
        restart: {{policy: on-failure, max_retries: 5}}
""",
    )
    client.apply_services(specs(client, config, "flaky"))
    wait_for(client, realm, all_in(READY, "flaky"))
    seen = wait_for(
        client, realm, lambda s: s["flaky"].restart_count >= 1 and s["flaky"].state == READY
    )
    assert seen["flaky"].exited
    assert seen["flaky"].last_exit_code == 1


def test_refusals_change_nothing_and_explain_themselves(
    client: AgentClient, realm: str, workdir: Path
) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    config = write_config(
        workdir,
        realm,
        f"""\
    portals:
      busy: {{service: web, host_port: {port}}}
    services:
      web:
        image: {TINY_IMAGE}
        connector_port: 8080
        command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
        resources: {{memory: 100TiB}}
      ghost:
        image: ozwald/no-such-image:1
      gpu:
        image: {TINY_IMAGE}
        resources: {{gpus: {{count: 1, vendor: nvidia}}}}
""",
    )
    with taken, pytest.raises(AdmissionRefusedError) as refused:
        client.apply_services(specs(client, config, "web", "ghost", "gpu"))
    assert refused.value.plan is not None
    reasons = {(r.name, plan_pb2.RefusalReason.Name(r.reason)) for r in refused.value.plan.refusals}
    assert {
        ("web", "REFUSAL_REASON_INSUFFICIENT_MEMORY"),
        ("web", "REFUSAL_REASON_HOST_PORT_TAKEN"),
        ("ghost", "REFUSAL_REASON_IMAGE_MISSING"),
        ("gpu", "REFUSAL_REASON_GPU_VENDOR_ABSENT"),
    } <= reasons
    memory = next(
        r
        for r in refused.value.plan.refusals
        if r.reason == plan_pb2.REFUSAL_REASON_INSUFFICIENT_MEMORY
    )
    assert "needs 102400.0 GiB memory" in memory.message
    assert "resources.memory" in memory.remedy
    assert statuses(client, realm) == {}
    assert not docker.from_env().containers.list(
        ignore_removed=True, all=True, filters={"label": f"ozwald.realm={realm}"}
    )


def test_a_restarted_agent_adopts_its_containers_without_duplicates(
    agent: RunningAgent, client: AgentClient, realm: str, workdir: Path
) -> None:
    config = write_config(workdir, realm, WEB_AND_CLIENT)
    client.apply_services(specs(client, config, "web", "client"))
    wait_for(client, realm, all_in(READY, "web", "client"))
    before = {name: container_id(realm, name) for name in ("web", "client")}

    agent.process.send_signal(signal.SIGKILL)
    agent.process.wait(10)
    restarted = start_agent(agent.socket.parent, socket=agent.socket, state_dir=agent.state_dir)
    agent.process = restarted.process  # the fixture stops whichever runs now
    with AgentClient(restarted.target, timeout=30) as again:
        wait_for(again, realm, all_in(READY, "web", "client"))
        after = {name: container_id(realm, name) for name in ("web", "client")}
        kinds = {a.kind for a in again.plan_services(specs(again, config, "web", "client")).actions}
    assert after == before
    assert kinds == {plan_pb2.ACTION_KIND_KEEP}


def test_persistent_services_are_untouched_by_dynamic_updates(
    client: AgentClient, realm: str, workdir: Path
) -> None:
    config = write_config(workdir, realm, WEB_AND_CLIENT)
    (web,) = specs(client, config, "web")
    client.apply_services([web], scope=service_scope_pb2.SERVICE_SCOPE_PERSISTENT)
    wait_for(client, realm, all_in(READY, "web"))
    persistent_id = container_id(realm, "web")
    assert statuses(client, realm)["web"].persistent

    client.apply_services([])  # the complete dynamic set: nothing
    client.apply_services(specs(client, config, "client"))
    wait_for(client, realm, all_in(READY, "web", "client"))
    assert container_id(realm, "web") == persistent_id


def test_stop_services_stops_in_reverse_dependency_order(
    client: AgentClient, realm: str, workdir: Path
) -> None:
    config = write_config(workdir, realm, WEB_AND_CLIENT)
    applied = client.apply_services(specs(client, config, "web", "client"))
    wait_for(client, realm, all_in(READY, "web", "client"))
    stopped = client.stop_services()
    assert [(r.realm, r.name) for r in stopped.stopping] == [(realm, "client"), (realm, "web")]
    wait_for(client, realm, lambda seen: seen == {})
    wait_for(
        client,
        realm,
        lambda _: not docker.from_env().networks.list(filters={"label": f"ozwald.realm={realm}"}),
    )
    order = [
        e.status.name
        for e in client.watch_services(
            after_sequence=stopped.event_sequence, realm=realm, timeout=2
        )
        if e.status.state == S.INSTANCE_STATE_STOPPING
    ]
    assert order == ["client", "web"]
    assert applied.event_sequence < stopped.event_sequence


PERSISTENT_KEEPER = f"""\
    services:
      keeper:
        image: {TINY_IMAGE}
        persistent: true
        connector_port: 8080
        entrypoint: [sh, -c]
        command: ["exec httpd -f -p 8080 -h /www"]
        health_check: {{http: {{path: /healthz}}, start_period: 0s, interval: 1s}}
"""


def test_persistent_services_start_with_the_agent_and_survive_its_restart(
    realm: str, workdir: Path
) -> None:
    config = write_config(workdir, realm, PERSISTENT_KEEPER)
    first = start_agent(workdir, ["--config", str(config)])
    try:
        with AgentClient(first.target, timeout=30) as client:
            wait_for(client, realm, all_in(READY, "keeper"))
            keeper_id = container_id(realm, "keeper")
            client.apply_services([])  # an empty dynamic set leaves persistent ones alone
    finally:
        assert first.terminate() == 0
    second = start_agent(workdir, ["--config", str(config)])
    try:
        with AgentClient(second.target, timeout=30) as client:
            seen = wait_for(client, realm, all_in(READY, "keeper"))
    finally:
        assert second.terminate() == 0
    assert seen["keeper"].persistent
    assert container_id(realm, "keeper") == keeper_id


def test_an_invalid_config_stops_the_agent_from_starting(workdir: Path) -> None:
    config = workdir / "bad.yml"
    config.write_text("version: 1\nrealms:\n  r:\n    services:\n      s: {imagee: x}\n")
    agent = start_agent(workdir, ["--config", str(config)], wait=False)
    assert agent.process.wait(30) == 10
    assert "imagee" in agent.logs()


def test_engine_outage_is_reported_and_the_agent_recovers_when_it_returns(
    realm: str, workdir: Path
) -> None:
    proxy = UnixProxy(workdir / "docker.sock", Path("/var/run/docker.sock"))
    proxy.start()
    config = write_config(workdir, realm, WEB_AND_CLIENT)
    os.environ["DOCKER_HOST"] = f"unix://{proxy.listen}"
    try:
        agent = start_agent(workdir)
    finally:
        del os.environ["DOCKER_HOST"]
    try:
        with AgentClient(agent.target, timeout=30) as client:
            web = specs(client, config, "web")
            proxy.stop()
            with pytest.raises(ContainerRuntimeUnavailableError) as down:
                client.apply_services(web)
            assert "engine" in down.value.message
            assert down.value.remedy
            profile = client.get_host_profile()
            assert not profile.container_runtime.reachable
            proxy.start()
            client.apply_services(web)
            wait_for(client, realm, all_in(READY, "web"))
    finally:
        proxy.stop()
        assert agent.terminate() == 0


def test_concurrent_updates_are_serialised_and_none_is_lost(
    client: AgentClient, realm: str, workdir: Path
) -> None:
    config = write_config(workdir, realm, WEB_AND_CLIENT)
    (web,) = specs(client, config, "web")
    (client_spec,) = specs(client, config, "client")
    lone = client_spec.__class__()
    lone.CopyFrom(client_spec)
    del lone.depends_on[:]
    results: dict[str, plan_pb2.Plan] = {}

    def apply(name: str, spec: object) -> None:
        with AgentClient(client.target, timeout=30) as own:
            results[name] = own.apply_services([spec]).plan  # type: ignore[list-item]

    threads = [
        threading.Thread(target=apply, args=("web", web)),
        threading.Thread(target=apply, args=("client", lone)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Whichever came second saw the first and stopped its service: a complete set each.
    second = next(n for n, p in results.items() if len(p.actions) == 2)
    first = "client" if second == "web" else "web"
    kinds = {a.name: a.kind for a in results[second].actions}
    assert kinds == {second: plan_pb2.ACTION_KIND_START, first: plan_pb2.ACTION_KIND_STOP}
    wait_for(client, realm, lambda seen: set(seen) == {second} and seen[second].state == READY)


def test_an_agent_killed_mid_apply_converges_after_restart_without_duplicates(
    agent: RunningAgent, client: AgentClient, realm: str, workdir: Path
) -> None:
    config = write_config(workdir, realm, WEB_AND_CLIENT)
    client.apply_services(specs(client, config, "web", "client"))
    agent.process.send_signal(signal.SIGKILL)  # before anything is ready
    agent.process.wait(10)
    restarted = start_agent(agent.socket.parent, socket=agent.socket, state_dir=agent.state_dir)
    agent.process = restarted.process
    with AgentClient(restarted.target, timeout=30) as again:
        wait_for(again, realm, all_in(READY, "web", "client"))
    containers = docker.from_env().containers.list(
        ignore_removed=True, all=True, filters={"label": f"ozwald.realm={realm}"}
    )
    assert sorted(c.labels["ozwald.service"] for c in containers) == ["client", "web"]


def test_watch_resumes_from_a_sequence_and_logs_stream(
    client: AgentClient, realm: str, workdir: Path
) -> None:
    config = write_config(workdir, realm, WEB_AND_CLIENT)
    applied = client.apply_services(specs(client, config, "web"))
    wait_for(client, realm, all_in(READY, "web"))
    events = list(
        client.watch_services(after_sequence=applied.event_sequence, realm=realm, timeout=2)
    )
    states = [S.InstanceState.Name(e.status.state) for e in events]
    assert states[-1] == "INSTANCE_STATE_READY"
    assert "INSTANCE_STATE_STARTING" in states
    middle = events[len(events) // 2].sequence
    resumed = list(client.watch_services(after_sequence=middle, realm=realm, timeout=2))
    assert [e.sequence for e in resumed] == [e.sequence for e in events if e.sequence > middle]

    # The agent's own health probes are in the log (httpd -vv logs each URL).
    output = b"".join(client.service_logs(realm, "web", tail_lines=50))
    assert b"url:/healthz" in output
