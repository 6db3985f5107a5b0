"""Secrets delivered as files: a real agent, the real Docker Engine, the tiny image.

Values are random per test, so finding one anywhere (docker inspect, the agent's log,
CLI output) is a leak, not a coincidence.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from ozwald.agent.v1 import plan_pb2

from ozwald_agent.runtime.secret_files import filesystem_type
from ozwald_sdk.agent_client import AgentClient
from ozwald_sdk.errors import AdmissionRefusedError, ExitCode
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

READY = S.INSTANCE_STATE_READY
CLI = [sys.executable, "-m", "ozwald_sdk.cli.main"]
PASSPHRASE = b"correct horse battery staple"
APP_UID = 10001

CONFIG = f"""\
    vault:
      lockers: [db]
    services:
      app:
        image: {TINY_IMAGE}
        secrets: [db]
        entrypoint: [sh, -c]
        command: ["while true; do sleep 1; done"]
        health_check:
          command: [sh, -c, "test -s /run/secrets/db/password"]
          start_period: 0s
          interval: 1s
          retries: 5
        resources: {{memory: 32MiB, cpus: 0.1}}
      other:
        image: {TINY_IMAGE}
        entrypoint: [sh, -c]
        command: ["while true; do sleep 1; done"]
        resources: {{memory: 32MiB, cpus: 0.1}}
"""


pytestmark = pytest.mark.usefixtures("tiny_image")


@pytest.fixture
def secrets_dir() -> Iterator[Path]:
    path = Path("/dev/shm") / f"ozwald-test-{uuid.uuid4().hex[:8]}"
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def passphrase_file(workdir: Path) -> Path:
    path = workdir / "vault-passphrase"
    path.write_bytes(PASSPHRASE + b"\n")
    path.chmod(0o400)
    return path


def _start(workdir: Path, secrets_dir: Path, *extra: str, wait: bool = True) -> RunningAgent:
    return start_agent(workdir, ["--secrets-dir", str(secrets_dir), *extra], wait=wait)


@pytest.fixture
def agent(workdir: Path, realm: str, secrets_dir: Path) -> Iterator[RunningAgent]:
    running = _start(workdir, secrets_dir)
    yield running
    running.terminate()


def cli(agent: RunningAgent, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*CLI, "--agent", agent.target, *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


def _create_vault(agent: RunningAgent, realm: str, value: bytes) -> list[bytes]:
    """Creates and unlocks the vault, sets db/password; returns the CLI's outputs."""
    outputs = []
    for args, stdin in (
        (("secrets", "unlock", "--create"), PASSPHRASE),
        (("secrets", "set", "db", "password", "--realm", realm), value),
    ):
        done = cli(agent, *args, stdin=stdin)
        assert done.returncode == 0, done.stderr
        outputs += [done.stdout, done.stderr]
    return outputs


def _read_in_container(realm: str, service: str, path: str) -> bytes:
    container = docker.from_env().containers.get(container_id(realm, service))
    result = container.exec_run(["cat", path], user=str(APP_UID))
    assert result.exit_code == 0, result.output
    assert isinstance(result.output, bytes)
    return result.output


def test_a_service_reads_its_secret_from_run_secrets_and_the_value_is_nowhere_else(
    agent: RunningAgent, realm: str, workdir: Path, secrets_dir: Path
) -> None:
    value = secrets.token_hex(16).encode()
    outputs = _create_vault(agent, realm, value)
    config = write_config(workdir, realm, CONFIG)
    with AgentClient(agent.target, timeout=30) as client:
        client.apply_services(specs(client, config, "app"))
        wait_for(client, realm, all_in(READY, "app"))

        assert _read_in_container(realm, "app", "/run/secrets/db/password") == value
        container = docker.from_env().containers.get(container_id(realm, "app"))
        mode = container.exec_run(["stat", "-c", "%a %u %g", "/run/secrets/db/password"])
        assert isinstance(mode.output, bytes)
        assert mode.output.decode().split() == ["400", str(APP_UID), str(APP_UID)]
        # Read-only: not even the owner can replace it.
        write = container.exec_run(["sh", "-c", "echo x > /run/secrets/db/password"])
        assert write.exit_code != 0

        inspected = json.dumps(container.attrs)
        assert value.decode() not in inspected
        (mount,) = [m for m in container.attrs["Mounts"] if m["Destination"] == "/run/secrets"]
        assert mount["RW"] is False
        host_dir = Path(mount["Source"])
        assert host_dir.is_relative_to(secrets_dir)
        assert filesystem_type(host_dir) in ("tmpfs", "ramfs")

        get = cli(agent, "secrets", "get", "db", "password", "--realm", realm)
        listed = cli(agent, "secrets", "list")
        audit = cli(agent, "secrets", "audit")
        for done in (get, listed, audit):
            assert done.returncode == 0, done.stderr
            outputs += [done.stdout, done.stderr]
        assert b"password" in listed.stdout
        assert b"reveal" not in audit.stdout and b" set " in audit.stdout
        revealed = cli(agent, "secrets", "get", "db", "password", "--realm", realm, "--reveal")
        assert revealed.stdout == value
        assert b" reveal " in cli(agent, "secrets", "audit").stdout

        client.stop_services()
        wait_for(client, realm, lambda seen: not seen)
        assert not host_dir.exists()
    for output in outputs:
        assert value not in output
    assert value.decode() not in agent.logs()


def test_a_value_on_the_command_line_is_refused(agent: RunningAgent, realm: str) -> None:
    done = cli(agent, "secrets", "set", "db", "password=hunter2", stdin=b"")
    assert done.returncode == ExitCode.USAGE
    assert b"never taken from the command line" in done.stderr
    assert b"hunter2" not in done.stdout + done.stderr


def test_a_locked_vault_or_a_missing_locker_refuses_the_start_and_creates_nothing(
    agent: RunningAgent, realm: str, workdir: Path
) -> None:
    config = write_config(workdir, realm, CONFIG)
    with AgentClient(agent.target, timeout=30) as client:
        with pytest.raises(AdmissionRefusedError) as locked:
            client.apply_services(specs(client, config, "app"))
        assert locked.value.exit_code == ExitCode.ADMISSION_REFUSED
        assert locked.value.plan is not None
        assert [r.reason for r in locked.value.plan.refusals] == [
            plan_pb2.REFUSAL_REASON_LOCKER_MISSING
        ]
        assert cli(agent, "secrets", "unlock", "--create", stdin=PASSPHRASE).returncode == 0
        cli(agent, "secrets", "set", "db", "password", "--realm", realm, stdin=b"v")
        assert cli(agent, "secrets", "lock").returncode == 0
        with pytest.raises(AdmissionRefusedError) as refused:
            client.apply_services(specs(client, config, "app"))
        assert refused.value.plan is not None
        (refusal,) = refused.value.plan.refusals
        assert refusal.reason == plan_pb2.REFUSAL_REASON_VAULT_LOCKED
        assert "ozwald secrets unlock" in refusal.remedy
        assert statuses(client, realm) == {}
    assert (
        docker.from_env().containers.list(all=True, filters={"label": f"ozwald.realm={realm}"})
        == []
    )
    wrong = cli(agent, "secrets", "unlock", stdin=b"not it")
    assert wrong.returncode == ExitCode.VAULT_LOCKED
    assert b"passphrase" in wrong.stderr


def test_restart_adopts_the_service_and_a_new_value_restarts_only_its_users(
    workdir: Path, realm: str, secrets_dir: Path, passphrase_file: Path
) -> None:
    first = _start(workdir, secrets_dir)
    try:
        _create_vault(first, realm, b"one")
    finally:
        assert first.terminate() == 0
    agent = _start(workdir, secrets_dir, "--vault-passphrase-file", str(passphrase_file))
    try:
        config = write_config(workdir, realm, CONFIG)
        with AgentClient(agent.target, timeout=30) as client:
            client.apply_services(specs(client, config, "app", "other"))
            wait_for(client, realm, all_in(READY, "app", "other"))
            app_id, other_id = container_id(realm, "app"), container_id(realm, "other")
        assert agent.terminate() == 0
        agent = _start(workdir, secrets_dir, "--vault-passphrase-file", str(passphrase_file))
        with AgentClient(agent.target, timeout=30) as client:
            wait_for(client, realm, all_in(READY, "app", "other"))
            assert (container_id(realm, "app"), container_id(realm, "other")) == (app_id, other_id)
            assert _read_in_container(realm, "app", "/run/secrets/db/password") == b"one"

            rotated = cli(agent, "secrets", "rotate", "db", "--realm", realm)
            assert rotated.returncode == 0, rotated.stderr
            again = client.apply_services(specs(client, config, "app", "other"))
            assert {a.kind for a in again.plan.actions} == {plan_pb2.ACTION_KIND_KEEP}

            assert (
                cli(
                    agent, "secrets", "set", "db", "password", "--realm", realm, stdin=b"two"
                ).returncode
                == 0
            )
            changed = client.apply_services(specs(client, config, "app", "other"))
            kinds = {a.name: a.kind for a in changed.plan.actions}
            assert kinds == {
                "app": plan_pb2.ACTION_KIND_RESTART,
                "other": plan_pb2.ACTION_KIND_KEEP,
            }
            assert list(
                next(a for a in changed.plan.actions if a.name == "app").changed_fields
            ) == ["secret_lockers"]
            wait_for(
                client,
                realm,
                lambda seen: (
                    seen.get("app") is not None
                    and seen["app"].state == READY
                    and seen["app"].container_id != app_id
                ),
            )
            assert _read_in_container(realm, "app", "/run/secrets/db/password") == b"two"
            assert container_id(realm, "other") == other_id
            client.stop_services()
            wait_for(client, realm, lambda seen: not seen)
    finally:
        agent.terminate()
    assert not any(secrets_dir.rglob("password"))


def test_a_wrong_passphrase_file_stops_the_agent_with_its_exit_code(
    workdir: Path, secrets_dir: Path
) -> None:
    first = _start(workdir, secrets_dir)
    try:
        assert cli(first, "secrets", "unlock", "--create", stdin=PASSPHRASE).returncode == 0
    finally:
        first.terminate()
    wrong = workdir / "wrong"
    wrong.write_bytes(b"nope\n")
    agent = _start(workdir, secrets_dir, "--vault-passphrase-file", str(wrong), wait=False)
    assert agent.process.wait(timeout=30) == 6
    assert "does not open" in agent.logs()
    assert os.path.exists(workdir / "state" / "vault.db")
