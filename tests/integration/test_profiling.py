"""Profiling on one host: a real agent, the real Docker Engine, the local tiny image, the CLI
as a user runs it."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from ozwald.agent.v1 import plan_pb2

from ozwald_sdk.agent_client import AgentClient
from ozwald_sdk.errors import ExitCode
from tests.integration.agent_process import RunningAgent, start_agent
from tests.integration.provisioning_support import (
    TINY_IMAGE,
    S,
    all_in,
    container_id,
    specs,
    wait_for,
    write_config,
)

READY = S.INSTANCE_STATE_READY
PROFILING_LABEL = "ozwald.profiling"

SERVICES = f"""\
    services:
      web:
        image: {TINY_IMAGE}
        connector_port: 8080
        entrypoint: [sh, -c]
        command: ["exec httpd -f -p 8080 -h /www"]
        health_check: {{http: {{path: /healthz}}, start_period: 0s, interval: 1s, retries: 3}}
        resources: {{memory: 64MiB, cpus: 0.2}}
      huge:
        image: {TINY_IMAGE}
        command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
        resources: {{memory: 100000GiB}}
      never:
        image: {TINY_IMAGE}
        connector_port: 8080
        entrypoint: [sh, -c]
        command: ["echo starting; exec httpd -f -p 8080 -h /www"]
        health_check: {{http: {{path: /not-there}}, start_period: 0s, interval: 1s, retries: 2}}
        resources: {{memory: 32MiB}}
"""


pytestmark = pytest.mark.usefixtures("tiny_image")


@pytest.fixture
def agent(workdir: Path, realm: str) -> Iterator[RunningAgent]:
    """Stopped before `realm` is cleaned up."""
    running = start_agent(workdir)
    yield running
    code = running.terminate()
    assert code == 0, f"agent exited with {code} on SIGTERM:\n{running.logs()}"


@pytest.fixture
def config(workdir: Path, realm: str) -> Path:
    return write_config(workdir, realm, SERVICES)


def ozwald(agent: RunningAgent, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ozwald_sdk.cli.main", "--agent", agent.target, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def profiling_containers(realm: str) -> list[Any]:
    return list(
        docker.from_env().containers.list(
            ignore_removed=True,
            all=True,
            filters={"label": [PROFILING_LABEL, f"ozwald.realm={realm}"]},
        )
    )


def profiling_networks(realm: str) -> list[Any]:
    return list(
        docker.from_env().networks.list(
            filters={"label": [PROFILING_LABEL, f"ozwald.realm={realm}"]}
        )
    )


def restart_with_a_leftover(
    agent: RunningAgent, workdir: Path, realm: str, running: str
) -> RunningAgent:
    """A copy left behind by a killed agent (made here by hand, with this agent's labels)
    is removed by the next agent, which adopts the running service untouched."""
    agent_id = docker.from_env().containers.get(running).labels["ozwald.agent"]
    code = agent.terminate()
    assert code == 0, agent.logs()
    leftover = docker.from_env().containers.run(
        TINY_IMAGE,
        name=f"ozwald-profile-{realm}",
        labels={PROFILING_LABEL: "leftover", "ozwald.agent": agent_id, "ozwald.realm": realm},
        detach=True,
    )
    again = start_agent(workdir)
    agent.process = again.process  # the fixture stops whichever agent runs last
    with AgentClient(again.target, timeout=30) as client:
        wait_for(client, realm, all_in(READY, "web"))
    deadline = time.monotonic() + 15
    while profiling_containers(realm) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert profiling_containers(realm) == [], f"leftover {leftover.name} was not removed"
    assert container_id(realm, "web") == running
    return again


def check_measured(footprint: dict[str, Any], realm: str) -> None:
    assert (footprint["realm"], footprint["service"]) == (realm, "web")
    ready_in = float(footprint["time_to_ready"].removesuffix("s"))
    assert 0 < ready_in < 30
    assert int(footprint["peak_memory_bytes"]) > 0
    assert footprint["memory_peak_source"] in (
        "MEMORY_PEAK_SOURCE_CGROUP_V1_MAX_USAGE",
        "MEMORY_PEAK_SOURCE_CGROUP_V2_MEMORY_PEAK",
        "MEMORY_PEAK_SOURCE_SAMPLED_USAGE",
    )
    assert footprint["warm_up"]["skipped_reason"] == "the service declares no openai API"
    assert int(footprint["samples"]) >= 2


def test_a_profiled_service_leaves_a_footprint_that_admission_uses_and_a_restart_keeps(
    agent: RunningAgent, realm: str, config: Path, workdir: Path
) -> None:
    with AgentClient(agent.target, timeout=30) as client:
        client.apply_services(specs(client, config, "web"))
        wait_for(client, realm, all_in(READY, "web"))
        running_before = container_id(realm, "web")
        declared = client.plan_services(specs(client, config, "web"))

    done = ozwald(agent, "profile", "web", "--config", str(config), "--json")

    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["failed"] == []
    (footprint,) = document["footprints"]
    check_measured(footprint, realm)
    # Progress went to stderr, phase by phase.
    assert "waiting for ready" in done.stderr and "done" in done.stderr

    # The running copy was never touched, and the profiled copy is gone with its network.
    assert container_id(realm, "web") == running_before
    assert profiling_containers(realm) == []
    assert profiling_networks(realm) == []
    with AgentClient(agent.target, timeout=30) as client:
        (status,) = client.list_services(realm=realm).instances
        assert status.state == READY and status.restart_count == 0

        listed = client.list_footprints(realm=realm)
        assert [f.service for f in listed] == ["web"]

        # Admission counts the measured figure now, and says so; before, the declared one.
        (before,) = [a for a in declared.actions if a.name == "web"]
        assert before.resources.memory.source == plan_pb2.FIGURE_SOURCE_DECLARED
        measured = client.plan_services(specs(client, config, "web"))
        (action,) = [a for a in measured.actions if a.name == "web"]
        assert action.resources.memory.source == plan_pb2.FIGURE_SOURCE_FOOTPRINT
        assert action.resources.memory.footprint_bytes == int(footprint["peak_memory_bytes"])
    plan_text = ozwald(agent, "update_services", "web", "--plan", "--config", str(config))
    assert plan_text.returncode == 0, plan_text.stderr
    assert "(footprint; declared 64.0 MiB)" in plan_text.stdout

    again = restart_with_a_leftover(agent, workdir, realm, running_before)
    with AgentClient(again.target, timeout=30) as client:
        assert [f.peak_memory_bytes for f in client.list_footprints(realm=realm)] == [
            int(footprint["peak_memory_bytes"])
        ]

    listed_text = ozwald(again, "footprints", "--realm", realm)
    assert listed_text.returncode == 0, listed_text.stderr
    assert f"{realm}:web" in listed_text.stdout

    forgot = ozwald(again, "footprints", "--forget", f"{realm}:web", "--json")
    assert forgot.returncode == 0, forgot.stderr
    assert [f["service"] for f in json.loads(forgot.stdout)["forgotten"]] == ["web"]
    with AgentClient(again.target, timeout=30) as client:
        assert client.list_footprints(realm=realm) == []


def test_a_service_that_cannot_fit_is_refused_and_nothing_starts(
    agent: RunningAgent, realm: str, config: Path
) -> None:
    refused = ozwald(agent, "profile", "huge", "--config", str(config))

    assert refused.returncode == ExitCode.ADMISSION_REFUSED, refused.stderr
    assert "nothing was started" in refused.stderr
    assert "INSUFFICIENT_MEMORY" in refused.stderr or "memory" in refused.stderr
    assert (
        docker.from_env().containers.list(
            ignore_removed=True, all=True, filters={"label": f"ozwald.realm={realm}"}
        )
        == []
    )
    assert profiling_networks(realm) == []
    with AgentClient(agent.target, timeout=30) as client:
        assert client.list_footprints(realm=realm) == []


def test_a_service_that_never_gets_ready_fails_cleanly(
    agent: RunningAgent, realm: str, config: Path
) -> None:
    failed = ozwald(agent, "profile", "never", "--config", str(config), "--json")

    assert failed.returncode == ExitCode.SERVICE_FAILED, failed.stderr
    document = json.loads(failed.stdout)
    assert document["footprints"] == []
    (failure,) = document["failed"]
    assert failure["selector"] == f"{realm}:never"
    assert failure["detail"].startswith("health check never passed: HTTP 404")
    assert "starting" in failure["last_log_lines"]
    assert profiling_containers(realm) == []
    assert profiling_networks(realm) == []
    with AgentClient(agent.target, timeout=30) as client:
        assert client.list_footprints(realm=realm) == []


def test_a_profiled_copy_gets_the_services_secrets_and_they_go_with_it(
    workdir: Path, realm: str
) -> None:
    secrets_dir = Path("/dev/shm") / f"ozwald-test-{uuid.uuid4().hex[:8]}"
    value = secrets.token_hex(12)
    config = write_config(
        workdir,
        realm,
        f"""\
    vault:
      lockers: [db]
    services:
      vaulted:
        image: {TINY_IMAGE}
        secrets: [db]
        secrets_delivery: both
        entrypoint: [sh, -c]
        command: ["while true; do sleep 1; done"]
        health_check:
          command:
            - sh
            - -c
            - test "$(cat /run/secrets/db/password)" = {value} && test -s /run/secrets/.ozwald-token
          start_period: 0s
          interval: 1s
          retries: 3
        resources: {{memory: 32MiB, cpus: 0.1}}
""",
    )
    agent = start_agent(workdir, ["--secrets-dir", str(secrets_dir)])
    try:
        for args, stdin in (
            (("secrets", "unlock", "--create"), "a passphrase"),
            (("secrets", "set", "db", "password", "--realm", realm), value),
        ):
            done = subprocess.run(
                [sys.executable, "-m", "ozwald_sdk.cli.main", "--agent", agent.target, *args],
                input=stdin,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 0, done.stderr

        profiled = ozwald(agent, "profile", "vaulted", "--config", str(config), "--json")

        assert profiled.returncode == 0, profiled.stderr
        assert json.loads(profiled.stdout)["failed"] == []
        assert value not in profiled.stdout + profiled.stderr + agent.logs()
        assert profiling_containers(realm) == []
        # The copy's files (and its token) went with it.
        left = [p for p in secrets_dir.glob("*/*") if not p.name.startswith(".")]
        assert left == []
    finally:
        assert agent.terminate() == 0
        shutil.rmtree(secrets_dir, ignore_errors=True)
