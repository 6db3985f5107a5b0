"""Encrypted volumes: a real agent, real Docker, real gocryptfs, the vault unlocked over
its RPC. Markers are random per test, so finding one in the ciphertext is a leak."""

from __future__ import annotations

import secrets
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from ozwald_agent.volumes import gocryptfs, mountinfo
from ozwald_sdk.agent_client import AgentClient
from ozwald_sdk.volume_client import VolumeClient
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


@pytest.fixture(autouse=True)
def _gocryptfs() -> None:
    # .ci/run installs it: missing here is a broken set-up, not a reason to prove nothing.
    reason = gocryptfs.unavailable_reason()
    if reason is not None:
        pytest.fail(f"{reason} (apt-get install -y gocryptfs fuse3)")


READY = S.INSTANCE_STATE_READY
FAILED = S.INSTANCE_STATE_FAILED
CLI = [sys.executable, "-m", "ozwald_sdk.cli.main"]
PASSPHRASE = b"correct horse battery staple"
APP_UID = 10001


def _service(name: str, mounts: str) -> str:
    return f"""\
      {name}:
        image: {TINY_IMAGE}
        entrypoint: [sh, -c]
        command: ["while true; do sleep 1; done"]
        volumes: {mounts}
        resources: {{memory: 32MiB, cpus: 0.1}}
"""


def _config(*services: str) -> str:
    return """\
    vault:
      lockers: [disk]
    volumes:
      data: {type: encrypted, key: {locker: disk, name: key}}
      scratch: {type: encrypted-tmp}
      models: {type: versioned, key: {locker: disk, name: key}}
    services:
""" + "".join(services)


pytestmark = pytest.mark.usefixtures("tiny_image")


@pytest.fixture
def volumes_dir() -> Iterator[Path]:
    path = Path("/run") / f"ozwald-test-volumes-{uuid.uuid4().hex[:8]}"
    yield path
    for entry in mountinfo.gocryptfs_mounts_under(path, mountinfo.read()):
        subprocess.run(["fusermount3", "-u", "-z", entry.mount_point], check=False)
    shutil.rmtree(path, ignore_errors=True)


def _start(workdir: Path, volumes_dir: Path, *extra: str) -> RunningAgent:
    secrets_dir = Path("/dev/shm") / f"ozwald-test-{workdir.name}"
    return start_agent(
        workdir,
        ["--secrets-dir", str(secrets_dir), "--volumes-dir", str(volumes_dir), *extra],
    )


@pytest.fixture
def agent(workdir: Path, realm: str, volumes_dir: Path) -> Iterator[RunningAgent]:
    running = _start(workdir, volumes_dir)
    yield running
    running.terminate()


def _cli(agent: RunningAgent, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*CLI, "--agent", agent.target, *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


def _set_key(agent: RunningAgent, realm: str, key: bytes, *, create: bool = True) -> None:
    if create:
        done = _cli(agent, "secrets", "unlock", "--create", stdin=PASSPHRASE)
        assert done.returncode == 0, done.stderr
    done = _cli(agent, "secrets", "set", "disk", "key", "--realm", realm, stdin=key)
    assert done.returncode == 0, done.stderr


def _exec(realm: str, service: str, script: str) -> tuple[int, bytes]:
    container = docker.from_env().containers.get(container_id(realm, service))
    result = container.exec_run(["sh", "-c", script], user=str(APP_UID))
    assert isinstance(result.output, bytes) and result.exit_code is not None
    return result.exit_code, result.output


def _agent_mounts(volumes_dir: Path) -> list[mountinfo.MountEntry]:
    return mountinfo.gocryptfs_mounts_under(volumes_dir, mountinfo.read())


def _gocryptfs_pids(mount_point: str) -> set[int]:
    """The gocryptfs processes serving `mount_point` (mount ids get reused; pids do not,
    within a test)."""
    pids = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if args[0].endswith(b"gocryptfs") and mount_point.encode() in args:
            pids.add(int(cmdline.parent.name))
    return pids


def _files_contain(root: Path, needle: bytes) -> bool:
    return any(p.is_file() and needle in p.read_bytes() for p in root.rglob("*"))


def test_data_survives_a_restart_and_exists_on_disk_only_as_ciphertext(
    agent: RunningAgent, realm: str, workdir: Path, volumes_dir: Path
) -> None:
    key = secrets.token_hex(32).encode()
    marker = f"marker-{secrets.token_hex(16)}"
    _set_key(agent, realm, key)
    config = write_config(workdir, realm, _config(_service("app", '["data:/data"]')))
    with AgentClient(agent.target, timeout=30) as client:
        client.apply_services(specs(client, config, "app"))
        wait_for(client, realm, all_in(READY, "app"))
        code, out = _exec(realm, "app", f"echo {marker} > /data/marker && cat /data/marker")
        assert code == 0 and out.strip() == marker.encode(), out
        assert len(_agent_mounts(volumes_dir)) == 1

        first = container_id(realm, "app")
        docker.from_env().containers.get(first).kill()
        wait_for(client, realm, lambda seen: seen["app"].container_id not in ("", first))
        wait_for(client, realm, all_in(READY, "app"))
        code, out = _exec(realm, "app", "cat /data/marker")
        assert code == 0 and out.strip() == marker.encode(), out

        backing = agent.state_dir / "volumes" / realm / "data" / "cipher"
        assert (backing / "gocryptfs.conf").is_file()
        assert not _files_contain(backing, marker.encode())
        assert not any("marker" in p.name for p in backing.rglob("*"))

        client.stop_services()
        wait_for(client, realm, lambda seen: not seen)
    assert _agent_mounts(volumes_dir) == []
    assert key.decode() not in agent.logs()
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    assert key.decode() not in ps.stdout


def test_a_wrong_key_fails_the_start_clearly_and_mounts_nothing(
    agent: RunningAgent, realm: str, workdir: Path, volumes_dir: Path
) -> None:
    _set_key(agent, realm, secrets.token_hex(32).encode())
    config = write_config(workdir, realm, _config(_service("app", '["data:/data"]')))
    with AgentClient(agent.target, timeout=30) as client:
        client.apply_services(specs(client, config, "app"))
        wait_for(client, realm, all_in(READY, "app"))
        _set_key(agent, realm, secrets.token_hex(32).encode(), create=False)
        # The key's revision is part of the fingerprint: the re-apply restarts the service.
        client.apply_services(specs(client, config, "app"))
        seen = wait_for(client, realm, all_in(FAILED, "app"))
        assert "does not open volume" in seen["app"].reason, seen["app"].reason
        assert _agent_mounts(volumes_dir) == []
        client.stop_services()
        wait_for(client, realm, lambda seen: not seen)


def test_a_tmp_volume_is_empty_for_each_instance_and_wiped_after_it(
    agent: RunningAgent, realm: str, workdir: Path, volumes_dir: Path
) -> None:
    config = write_config(workdir, realm, _config(_service("app", '["scratch:/scratch"]')))
    with AgentClient(agent.target, timeout=30) as client:
        client.apply_services(specs(client, config, "app"))
        wait_for(client, realm, all_in(READY, "app"))
        code, out = _exec(realm, "app", "ls -A /scratch; echo hello > /scratch/f")
        assert code == 0 and out == b"", out
        tmp_root = agent.state_dir / "volumes" / ".tmp"
        assert any(tmp_root.rglob("gocryptfs.conf"))

        first = container_id(realm, "app")
        docker.from_env().containers.get(first).kill()
        wait_for(client, realm, lambda seen: seen["app"].container_id not in ("", first))
        wait_for(client, realm, all_in(READY, "app"))
        code, out = _exec(realm, "app", "ls -A /scratch")
        assert code == 0 and out == b"", out

        client.stop_services()
        wait_for(client, realm, lambda seen: not seen)
    assert not any(tmp_root.rglob("*")) if tmp_root.exists() else True
    assert _agent_mounts(volumes_dir) == []


def test_versions_are_read_only_and_never_change(
    agent: RunningAgent, realm: str, workdir: Path, volumes_dir: Path
) -> None:
    _set_key(agent, realm, secrets.token_hex(32).encode())
    writer = _service("writer", "[{volume: models, target: /work, version: working}]")
    reader = _service("reader", '["models:/models:ro"]')
    config = write_config(workdir, realm, _config(writer, reader))
    with AgentClient(agent.target, timeout=30) as client, VolumeClient(agent.target) as volumes:
        client.apply_services(specs(client, config, "writer"))
        wait_for(client, realm, all_in(READY, "writer"))
        assert _exec(realm, "writer", "echo one > /work/weights")[0] == 0
        v1 = volumes.snapshot(realm, "models")
        assert v1.number == 1 and v1.file_count >= 1

        client.apply_services(specs(client, config, "writer", "reader"))
        wait_for(client, realm, all_in(READY, "writer", "reader"))
        code, out = _exec(realm, "reader", "cat /models/weights")
        assert code == 0 and out == b"one\n"
        code, out = _exec(realm, "reader", "echo x > /models/weights")
        assert code != 0 and b"Read-only file system" in out, out

        assert _exec(realm, "writer", "echo two > /work/weights")[0] == 0
        v2 = volumes.snapshot(realm, "models")
        assert v2.number == 2
        listed = volumes.versions(realm, "models")
        assert [v.number for v in listed] == [1, 2]
        assert listed[0].content_sha256 == v1.content_sha256 != v2.content_sha256
        stored = agent.state_dir / "volumes" / realm / "models" / "versions" / "1"
        from ozwald_agent.volumes.versions import content_hash

        assert content_hash(stored / "cipher")[0] == v1.content_sha256
        shown = _cli(agent, "volumes", "versions", realm, "models")
        assert shown.returncode == 0 and v1.content_sha256.encode() in shown.stdout, shown
        listed_cli = _cli(agent, "volumes", "list", "--realm", realm)
        assert b"models" in listed_cli.stdout and b"ozwald-" in listed_cli.stdout, listed_cli
        unknown = _cli(agent, "volumes", "snapshot", realm, "nope")
        assert unknown.returncode != 0 and b"nope" in unknown.stderr

        # The reader still has v1 pinned until the next apply, which moves it to v2.
        assert _exec(realm, "reader", "cat /models/weights")[1] == b"one\n"
        before = container_id(realm, "reader")
        client.apply_services(specs(client, config, "writer", "reader"))
        wait_for(client, realm, lambda seen: seen["reader"].container_id not in ("", before))
        wait_for(client, realm, all_in(READY, "reader"))
        assert _exec(realm, "reader", "cat /models/weights")[1] == b"two\n"
        client.stop_services()
        wait_for(client, realm, lambda seen: not seen)
    assert _agent_mounts(volumes_dir) == []


def test_an_agent_killed_with_a_volume_mounted_leaves_no_leftover_after_its_restart(
    agent: RunningAgent, realm: str, workdir: Path, volumes_dir: Path
) -> None:
    _set_key(agent, realm, secrets.token_hex(32).encode())
    config = write_config(workdir, realm, _config(_service("app", '["data:/data"]')))
    with AgentClient(agent.target, timeout=30) as client:
        client.apply_services(specs(client, config, "app"))
        wait_for(client, realm, all_in(READY, "app"))
        assert _exec(realm, "app", "echo kept > /data/f")[0] == 0
    (before,) = _agent_mounts(volumes_dir)
    agent.process.send_signal(signal.SIGKILL)
    agent.process.wait()
    # The container goes while no agent watches: its plaintext mount is a leftover.
    docker.from_env().containers.get(container_id(realm, "app")).remove(force=True)
    assert [m.mount_point for m in _agent_mounts(volumes_dir)] == [before.mount_point]
    (old_pid,) = _gocryptfs_pids(before.mount_point)

    passphrase = workdir / "passphrase"
    passphrase.write_bytes(PASSPHRASE)
    passphrase.chmod(0o400)
    unlocked = ("--vault-passphrase-file", str(passphrase))
    restarted = _start(workdir, volumes_dir, *unlocked)
    try:
        with AgentClient(restarted.target, timeout=30) as client:
            # Recreated (the desired set survived), on a fresh mount: the leftover went.
            wait_for(client, realm, all_in(READY, "app"), timeout=60)
            (after,) = _agent_mounts(volumes_dir)
            (new_pid,) = _gocryptfs_pids(after.mount_point)
            assert new_pid != old_pid
            assert _exec(realm, "app", "cat /data/f")[1] == b"kept\n"
            # An adopted container keeps its mount across a clean agent restart.
        restarted.terminate()
        assert _gocryptfs_pids(after.mount_point) == {new_pid}
        restarted = _start(workdir, volumes_dir, *unlocked)
        with AgentClient(restarted.target, timeout=30) as client:
            wait_for(client, realm, all_in(READY, "app"))
            assert _exec(realm, "app", "cat /data/f")[1] == b"kept\n"
            client.stop_services()
            wait_for(client, realm, lambda seen: not seen)
        assert _agent_mounts(volumes_dir) == []
    finally:
        restarted.terminate()
