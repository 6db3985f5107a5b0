"""The secrets endpoint: a real agent, real containers, a real HTTP client inside them.

busybox has no client that speaks HTTP over a unix socket (its `nc` and `wget` are
TCP only), so the services run the Debian image that `scripts/build-vllm-cpu-image.sh`
builds as its base, and the client is `python3 -c` run inside the container.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from ozwald_agent.secrets.vault import Vault
from ozwald_sdk.agent_client import AgentClient
from tests.integration.agent_process import RunningAgent, start_agent
from tests.integration.provisioning_support import (
    S,
    all_in,
    container_id,
    specs,
    wait_for,
    write_config,
)

READY = S.INSTANCE_STATE_READY
CLI = [sys.executable, "-m", "ozwald_sdk.cli.main"]
PASSPHRASE = b"correct horse battery staple"
IMAGE = "ozwald/debian-bookworm:local"

CLIENT = """
import http.client, os, socket, sys
class Unix(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(os.environ["OZWALD_SECRETS_SOCKET"])
path, token = sys.argv[1], sys.argv[2]
if token == "-":
    token = open(os.environ["OZWALD_SECRETS_TOKEN_FILE"]).read()
conn = Unix("localhost", timeout=10)
conn.request("GET", path, headers={"Authorization": "Bearer " + token})
reply = conn.getresponse()
sys.stdout.write(str(reply.status) + "\\n")
sys.stdout.flush()
sys.stdout.buffer.write(reply.read())
"""

SERVICE = """\
      {name}:
        image: {image}
        secrets: [{locker}]
        secrets_delivery: {mode}
        entrypoint: [sh, -c]
        command: ["while true; do sleep 1; done"]
        health_check:
          command: [sh, -c, "test -s /run/secrets/.ozwald-token"]
          start_period: 0s
          interval: 1s
          retries: 5
        resources: {{memory: 64MiB, cpus: 0.2}}
"""


def _config(mode: str = "endpoint") -> str:
    return (
        "    vault:\n      lockers: [db, stripe]\n    services:\n"
        + SERVICE.format(name="app", image=IMAGE, locker="db", mode=mode)
        + SERVICE.format(name="billing", image=IMAGE, locker="stripe", mode="both")
    )


@pytest.fixture(scope="module", autouse=True)
def debian_image() -> None:
    """A Debian with python3 for the in-container client (busybox cannot speak HTTP over a
    unix socket); made locally by mmdebstrap when missing (about a minute)."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "build-vllm-cpu-image.sh"
    subprocess.run(["bash", str(script), "--base-only"], check=True, timeout=600)


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


def _cli(agent: RunningAgent, *args: str, stdin: bytes = b"") -> None:
    done = subprocess.run(
        [*CLI, "--agent", agent.target, *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _start(workdir: Path, secrets_dir: Path, *extra: str) -> RunningAgent:
    return start_agent(workdir, ["--secrets-dir", str(secrets_dir), *extra])


def _with_vault(
    workdir: Path, realm: str, secrets_dir: Path, passphrase_file: Path
) -> tuple[RunningAgent, dict[str, bytes]]:
    """A vault with db/password and stripe/key set, then an agent that unlocks it at start."""
    first = _start(workdir, secrets_dir)
    values = {"db": secrets.token_hex(16).encode(), "stripe": secrets.token_hex(16).encode()}
    try:
        _cli(first, "secrets", "unlock", "--create", stdin=PASSPHRASE)
        _cli(first, "secrets", "set", "db", "password", "--realm", realm, stdin=values["db"])
        _cli(first, "secrets", "set", "stripe", "key", "--realm", realm, stdin=values["stripe"])
    finally:
        assert first.terminate() == 0
    return _start(workdir, secrets_dir, "--vault-passphrase-file", str(passphrase_file)), values


def _get(realm: str, service: str, path: str, token: str = "-") -> tuple[int, bytes]:
    container = docker.from_env().containers.get(container_id(realm, service))
    result = container.exec_run(["python3", "-c", CLIENT, path, token])
    assert result.exit_code == 0, result.output
    status, _, body = _out(result).partition(b"\n")
    return int(status), body


def _out(result: object) -> bytes:
    output = getattr(result, "output", None)
    assert isinstance(output, bytes), output
    return output


def _token(realm: str, service: str) -> str:
    container = docker.from_env().containers.get(container_id(realm, service))
    result = container.exec_run(["cat", "/run/secrets/.ozwald-token"])
    assert result.exit_code == 0, result.output
    return _out(result).decode()


def _fetches(state_dir: Path) -> list[tuple[str, str, str, str]]:
    vault = Vault(state_dir / "vault.db")
    try:
        return [
            (r.who, r.locker, r.names, r.outcome)
            for r in vault.audit_records(limit=1000)
            if r.action == "fetch"
        ]
    finally:
        vault.close()


def test_a_container_reads_its_secrets_through_the_endpoint_with_its_token(
    workdir: Path, realm: str, secrets_dir: Path, passphrase_file: Path
) -> None:
    agent, values = _with_vault(workdir, realm, secrets_dir, passphrase_file)
    try:
        with AgentClient(agent.target, timeout=30) as client:
            client.apply_services(
                specs(client, write_config(workdir, realm, _config()), "app", "billing")
            )
            wait_for(client, realm, all_in(READY, "app", "billing"))

            assert _get(realm, "app", "/v1/secrets/db/password") == (200, values["db"])
            # Endpoint only: no value is a file; the token is the container user's, 0400.
            app = docker.from_env().containers.get(container_id(realm, "app"))
            listing = app.exec_run(["ls", "-A", "/run/secrets"])
            assert _out(listing).split() == [b".ozwald-token"]
            mode = app.exec_run(["stat", "-c", "%a %u", "/run/secrets/.ozwald-token"])
            assert _out(mode).split() == [b"400", b"0"]
            # `both` has files and the endpoint.
            billing = docker.from_env().containers.get(container_id(realm, "billing"))
            assert _out(billing.exec_run(["cat", "/run/secrets/stripe/key"])) == (values["stripe"])
            assert _get(realm, "billing", "/v1/secrets/stripe/key")[0] == 200

            # Another service's locker: 403; a wrong token: 401; a missing name: 404.
            assert _get(realm, "app", "/v1/secrets/stripe/key")[0] == 403
            assert _get(realm, "app", "/v1/secrets/db/password", "not-a-token")[0] == 401
            assert _get(realm, "app", "/v1/secrets/db/nothing")[0] == 404
            # billing's token does not read app's locker, from either container.
            assert _get(realm, "app", "/v1/secrets/db/password", _token(realm, "billing"))[0] == 403

            inspect = str(app.attrs)
            assert values["db"].decode() not in inspect
            assert _token(realm, "app") not in inspect
            assert values["db"].decode() not in agent.logs()

            fetches = _fetches(agent.state_dir)
            app_who = f"container:{realm}/app/"
            assert any(
                w.startswith(app_who) and (lk, n, o) == ("db", "password", "ok")
                for w, lk, n, o in fetches
            )
            assert any(
                w.startswith(app_who) and o == "LOCKER_NOT_GRANTED" for w, _, _, o in fetches
            )
            assert ("container:unknown", "db", "password", "TOKEN_INVALID") in fetches
            client.stop_services()
    finally:
        agent.terminate()


def test_a_token_is_revoked_when_its_container_stops_and_reminted_after_an_agent_restart(
    workdir: Path, realm: str, secrets_dir: Path, passphrase_file: Path
) -> None:
    agent, values = _with_vault(workdir, realm, secrets_dir, passphrase_file)
    try:
        config = write_config(workdir, realm, _config())
        with AgentClient(agent.target, timeout=30) as client:
            client.apply_services(specs(client, config, "app", "billing"))
            wait_for(client, realm, all_in(READY, "app", "billing"))
            before = _token(realm, "app")
            assert _get(realm, "app", "/v1/secrets/db/password", before)[0] == 200

        # An agent restart forgets every token; the adopted container gets a new one.
        assert agent.terminate() == 0
        agent = _start(workdir, secrets_dir, "--vault-passphrase-file", str(passphrase_file))
        deadline = time.monotonic() + 20
        while _token(realm, "app") == before and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _get(realm, "app", "/v1/secrets/db/password", before)[0] == 401
        assert _get(realm, "app", "/v1/secrets/db/password") == (200, values["db"])

        # Stopping app revokes its token: presented from billing's container, it fails.
        app_token = _token(realm, "app")
        with AgentClient(agent.target, timeout=30) as client:
            client.apply_services(specs(client, config, "billing"))
            deadline = time.monotonic() + 30
            while _exists(realm, "app") and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not _exists(realm, "app")
            assert _get(realm, "billing", "/v1/secrets/db/password", app_token)[0] == 401
            client.stop_services()
    finally:
        agent.terminate()
    # The agent's socket goes with it.
    assert not list(secrets_dir.glob("*/.endpoint/agent.sock"))


def _exists(realm: str, service: str) -> bool:
    found = docker.from_env().containers.list(
        all=True, filters={"label": [f"ozwald.realm={realm}", f"ozwald.service={service}"]}
    )
    return bool(found)


def test_a_token_expires_and_the_agent_writes_a_fresh_one(
    workdir: Path, realm: str, secrets_dir: Path, passphrase_file: Path
) -> None:
    first = _start(workdir, secrets_dir)
    try:
        _cli(first, "secrets", "unlock", "--create", stdin=PASSPHRASE)
        _cli(first, "secrets", "set", "db", "password", "--realm", realm, stdin=b"v")
    finally:
        assert first.terminate() == 0
    agent = _start(
        workdir,
        secrets_dir,
        "--vault-passphrase-file",
        str(passphrase_file),
        "--secrets-token-ttl",
        "4",
    )
    try:
        with AgentClient(agent.target, timeout=30) as client:
            client.apply_services(specs(client, write_config(workdir, realm, _config()), "app"))
            wait_for(client, realm, all_in(READY, "app"))
            old = _token(realm, "app")
            time.sleep(5)
            assert _get(realm, "app", "/v1/secrets/db/password", old)[0] == 401
            assert _token(realm, "app") != old
            assert _get(realm, "app", "/v1/secrets/db/password") == (200, b"v")
            client.stop_services()
    finally:
        agent.terminate()
