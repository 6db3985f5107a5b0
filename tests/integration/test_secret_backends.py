"""The vault's keyring and AWS KMS backends against real servers started for the test.

- aws-kms: moto's standalone server (`moto[server]`), a real HTTP server that speaks
  the KMS API, on 127.0.0.1 with a free port and dummy credentials.
- keyring: the Secret Service API of a real gnome-keyring-daemon on a private D-Bus
  session bus (`dbus-daemon --session`), its login keyring created and unlocked with a
  known password (`--unlock`, password on stdin): what works headless.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from ozwald.agent.v1 import plan_pb2

from ozwald_agent.secrets.backends import AwsKmsKeyWrapper, encryption_context
from ozwald_agent.secrets.crypto import DecryptionError
from ozwald_agent.secrets.vault import Vault
from ozwald_sdk.agent_client import AgentClient
from tests.integration.agent_process import RunningAgent, run_agent_command, start_agent
from tests.integration.provisioning_support import (
    TINY_IMAGE,
    S,
    all_in,
    container_id,
    ensure_tiny_image,
    new_realm,
    realm_cleanup,
    specs,
    wait_for,
    write_config,
)

boto3 = pytest.importorskip("boto3")
keyring = pytest.importorskip("keyring")

CLI = [sys.executable, "-m", "ozwald_sdk.cli.main"]
REGION = "us-east-1"
SERVICE = f"""\
    vault:
      lockers: [db]
    services:
      app:
        image: {TINY_IMAGE}
        secrets: [db]
        entrypoint: [sh, -c]
        command: ["while true; do sleep 1; done"]
        resources: {{memory: 32MiB, cpus: 0.1}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def kms_url() -> Iterator[str]:
    server = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    if server is None:
        pytest.fail("moto_server is missing: pip install 'moto[server]' (make install does)")
    port = _free_port()
    process = subprocess.Popen(
        [server, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)


@pytest.fixture
def aws_env(kms_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return env


@pytest.fixture
def kms(kms_url: str, aws_env: dict[str, str]) -> object:
    return boto3.client("kms", endpoint_url=kms_url, region_name=REGION)


@pytest.fixture
def kms_key(kms: object) -> str:
    return str(kms.create_key()["KeyMetadata"]["KeyId"])  # type: ignore[attr-defined]


@pytest.fixture
def keyring_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    daemon = shutil.which("gnome-keyring-daemon")
    if daemon is None or shutil.which("dbus-daemon") is None:
        pytest.fail(
            "gnome-keyring-daemon or dbus-daemon is missing: apt-get install -y gnome-keyring dbus"
        )
    home, runtime = tmp_path / "home", tmp_path / "run"
    home.mkdir()
    runtime.mkdir(mode=0o700)
    bus = f"unix:path={tmp_path / 'bus'}"
    env = {
        "DBUS_SESSION_BUS_ADDRESS": bus,
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(runtime),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.SecretService.Keyring",
    }
    dbus = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", f"--address={bus}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    gnome = None
    try:
        deadline = time.monotonic() + 10
        while not (tmp_path / "bus").exists():
            assert time.monotonic() < deadline, "dbus-daemon did not start"
            time.sleep(0.05)
        gnome = subprocess.Popen(
            [daemon, "--foreground", "--unlock", "--components=secrets"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **env},
        )
        assert gnome.stdin is not None
        gnome.stdin.write(b"login keyring password")
        gnome.stdin.close()
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        # keyring picks its backend once per process, from the environment of that moment:
        # anything in this process that touched keyring before (with no session bus) left
        # it on keyring.backends.fail, which refuses every call. Choose again, now.
        previous_backend = keyring.get_keyring()
        keyring.core.init_backend()
        # The login collection is created and unlocked asynchronously: wait for a
        # round trip through the real Secret Service.
        deadline = time.monotonic() + 30
        while True:
            try:
                keyring.set_password("ozwald-probe", "probe", "ok")
                if keyring.get_password("ozwald-probe", "probe") == "ok":
                    break
            except keyring.errors.KeyringError:
                pass
            assert time.monotonic() < deadline, "gnome-keyring-daemon did not answer"
            time.sleep(0.2)
        try:
            yield env
        finally:
            keyring.set_keyring(previous_backend)
    finally:
        if gnome is not None:
            _stop(gnome)
        _stop(dbus)


@pytest.fixture
def secrets_dir() -> Iterator[Path]:
    path = Path("/dev/shm") / f"ozwald-test-{uuid.uuid4().hex[:8]}"
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def realm() -> Iterator[str]:
    ensure_tiny_image()
    name = new_realm()
    with realm_cleanup(name):
        yield name


def cli(agent: RunningAgent, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*CLI, "--agent", agent.target, *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


def _ok(done: subprocess.CompletedProcess[bytes]) -> bytes:
    assert done.returncode == 0, done.stderr
    return done.stdout


def _agent_id(state_dir: Path) -> str:
    with sqlite3.connect(state_dir / "agent.db") as db:
        return str(db.execute("SELECT value FROM meta WHERE key = 'agent_id'").fetchone()[0])


# -- AWS KMS -------------------------------------------------------------------------


def test_kms_data_keys_are_made_by_kms_and_bound_to_their_locker(
    tmp_path: Path, kms_url: str, kms: object, kms_key: str
) -> None:
    wrapper = AwsKmsKeyWrapper.connect(kms_key, region=REGION, endpoint_url=kms_url)
    vault = Vault(tmp_path / "vault.db")
    try:
        assert vault.open_with(wrapper) is True
        assert vault.backend == "aws-kms"
        vault.set("shop", "db", {"password": b"s3cret"})
        vault.set("shop", "stripe", {"key": b"sk_live"})
        with sqlite3.connect(tmp_path / "vault.db") as db:
            wrapped = dict(db.execute("SELECT locker, wrapped FROM data_keys").fetchall())
        db_context = {
            "ozwald:purpose": "ozwald.vault.locker",
            "ozwald:realm": "shop",
            "ozwald:locker": "db",
            "ozwald:key_version": "1",
        }
        assert encryption_context(b"ozwald.vault.locker\0shop\0db\x001") == db_context
        # The stored form is a KMS ciphertext: KMS opens it with its own context only.
        plain = kms.decrypt(CiphertextBlob=wrapped["db"], EncryptionContext=db_context)  # type: ignore[attr-defined]
        assert len(plain["Plaintext"]) == 32
        other = {**db_context, "ozwald:locker": "stripe"}
        with pytest.raises(Exception, match="InvalidCiphertext"):
            kms.decrypt(CiphertextBlob=wrapped["db"], EncryptionContext=other)  # type: ignore[attr-defined]
        with pytest.raises(DecryptionError):
            wrapper.unwrap(wrapped["db"], b"ozwald.vault.locker\0shop\0stripe\x001")

        # Rotation: a new KMS data key per locker, then every data key re-wrapped under
        # the key's current version (ReEncrypt); values and revisions stay.
        revision = vault.current_revision("shop", "db")
        state, count = vault.rotate("shop", "db")
        assert (state.key_version, count, state.revision) == (2, 1, revision)
        assert vault.rewrap() == 2
        assert vault.read_revision("shop", "db", state.revision) == {"password": b"s3cret"}
    finally:
        vault.close()

    # A new process (a restarted agent) opens it with KMS alone.
    again = Vault(tmp_path / "vault.db")
    try:
        again.open_with(AwsKmsKeyWrapper.connect(kms_key, region=REGION, endpoint_url=kms_url))
        assert again.reveal("shop", "stripe", "key")[1] == b"sk_live"
        # A vault of the KMS backend is not unlocked with a passphrase.
        with pytest.raises(Exception, match="aws-kms backend"):
            again.unlock(b"a passphrase")
    finally:
        again.close()


@pytest.mark.usefixtures("aws_env")
def test_an_agent_on_aws_kms_needs_no_unlock_and_rotation_restarts_nothing(
    workdir: Path, realm: str, secrets_dir: Path, kms_url: str, kms_key: str
) -> None:
    args = [
        "--secrets-dir",
        str(secrets_dir),
        "--vault-backend",
        "aws-kms",
        "--vault-kms-key-id",
        kms_key,
        "--vault-kms-endpoint-url",
        kms_url,
        "--vault-kms-region",
        REGION,
    ]
    agent = start_agent(workdir, args)
    try:
        assert b"backend aws-kms" in _ok(cli(agent, "secrets", "status"))
        _ok(cli(agent, "secrets", "set", "db", "password", "--realm", realm, stdin=b"one"))
        config = write_config(workdir, realm, SERVICE)
        with AgentClient(agent.target, timeout=30) as client:
            client.apply_services(specs(client, config, "app"))
            wait_for(client, realm, all_in(S.INSTANCE_STATE_READY, "app"))
            before = container_id(realm, "app")

            _ok(cli(agent, "secrets", "rotate", "db", "--realm", realm))
            again = client.apply_services(specs(client, config, "app"))
            assert {a.kind for a in again.plan.actions} == {plan_pb2.ACTION_KIND_KEEP}
            assert container_id(realm, "app") == before
            app = docker.from_env().containers.get(before)
            assert app.exec_run(["cat", "/run/secrets/db/password"], user="10001").output == b"one"

        # Restarted, it opens the vault through KMS by itself.
        assert agent.terminate() == 0
        agent = start_agent(workdir, args)
        assert b"one" in _ok(
            cli(agent, "secrets", "get", "db", "password", "--realm", realm, "--reveal")
        )
        with AgentClient(agent.target, timeout=30) as client:
            client.stop_services()
    finally:
        agent.terminate()


def test_an_agent_on_aws_kms_without_a_key_id_stops_with_exit_6(
    workdir: Path, aws_env: dict[str, str]
) -> None:
    done = run_agent_command(
        "--socket",
        str(workdir / "agent.sock"),
        "--state-dir",
        str(workdir / "state"),
        "--vault-backend",
        "aws-kms",
    )
    assert done.returncode == 6, done.stderr
    assert "--vault-kms-key-id" in done.stderr


# -- OS keyring (Secret Service) -----------------------------------------------------


def test_an_agent_on_the_keyring_keeps_its_root_key_in_the_secret_service(
    workdir: Path, secrets_dir: Path, keyring_env: dict[str, str]
) -> None:
    args = ["--secrets-dir", str(secrets_dir), "--vault-backend", "keyring"]
    agent = start_agent(workdir, args)
    try:
        assert b"backend keyring" in _ok(cli(agent, "secrets", "status"))
        _ok(cli(agent, "secrets", "set", "db", "password", stdin=b"from-the-keyring"))
        stored = keyring.get_password("ozwald-agent", _agent_id(agent.state_dir))
        assert stored is not None and len(bytes.fromhex(stored)) == 32

        # No passphrase: a restarted agent opens the vault with the keyring's key.
        assert agent.terminate() == 0
        agent = start_agent(workdir, args)
        out = _ok(cli(agent, "secrets", "get", "db", "password", "--reveal"))
        assert b"from-the-keyring" in out
        _ok(cli(agent, "secrets", "rotate", "db"))
        assert b"from-the-keyring" in _ok(
            cli(agent, "secrets", "get", "db", "password", "--reveal")
        )
        # A passphrase does not open a keyring vault.
        refused = cli(agent, "secrets", "unlock", stdin=b"any passphrase")
        assert refused.returncode != 0
        assert b"keyring backend" in refused.stderr
    finally:
        agent.terminate()

    # Without its keyring entry the vault cannot open: the agent says so and stops.
    keyring.delete_password("ozwald-agent", _agent_id(workdir / "state"))
    done = run_agent_command(
        "--socket", str(workdir / "agent.sock"), "--state-dir", str(workdir / "state"), *args
    )
    assert done.returncode == 6, done.stderr
    assert "keyring entry" in done.stderr
