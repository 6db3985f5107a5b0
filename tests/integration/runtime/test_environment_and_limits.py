"""Environment from env files, the security and resource limits, and volumes, as applied."""

from __future__ import annotations

import logging
from pathlib import Path

import docker
import pytest
from ozwald.common.v1 import service_spec_pb2 as spec_pb2

from ozwald_agent.runtime import (
    DEFAULT_NOFILE_LIMIT,
    DEFAULT_PIDS_LIMIT,
    DockerRuntime,
    MountSourceMissingError,
)
from ozwald_agent.runtime.engine_limits import engine_open_files_limit
from tests.integration.runtime.services import IDLE, start_service, tiny

pytestmark = pytest.mark.integration

SECRET = "hf_s3cr3t_value_4711"


def _idle(realm: str, **fields: object) -> spec_pb2.ServiceSpec:
    spec = tiny(realm, command=IDLE, **fields)  # type: ignore[arg-type]
    spec.ClearField("health_check")
    return spec


def test_env_files_are_applied_later_ones_and_the_spec_winning(
    runtime: DockerRuntime, realm: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base = tmp_path / "base.env"
    site = tmp_path / "site.env"
    base.write_text(f'# model settings\nMODEL=small\nHF_TOKEN={SECRET}\nQUOTED="as is"\n')
    site.write_text("MODEL=large\nREGION=eu\n")
    spec = _idle(realm, env_files=[str(base), str(site)], environment={"REGION": "us"})

    with caplog.at_level(logging.DEBUG):
        info = start_service(runtime, spec)

    environment = runtime.exec(info.id, ["env"], timeout_s=5).output.splitlines()
    assert "MODEL=large" in environment
    assert f"HF_TOKEN={SECRET}" in environment
    assert 'QUOTED="as is"' in environment
    assert "REGION=us" in environment
    assert SECRET not in caplog.text
    assert all(SECRET not in line for line in runtime.logs(info.id, tail=None))


def test_security_and_limits_are_in_inspect_and_in_force(
    runtime: DockerRuntime, realm: str, engine: docker.DockerClient
) -> None:
    resources = spec_pb2.ResourceRequirements(
        memory_bytes=64 << 20, cpus=0.5, shm_size_bytes=16 << 20
    )
    info = start_service(runtime, _idle(realm, resources=resources))

    host = engine.api.inspect_container(info.id)["HostConfig"]
    assert host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges:true"]
    assert host["PidsLimit"] == DEFAULT_PIDS_LIMIT
    assert host["Memory"] == 64 << 20
    assert host["MemorySwap"] == 64 << 20
    assert host["NanoCpus"] == 500_000_000
    assert host["ShmSize"] == 16 << 20
    assert host["RestartPolicy"]["Name"] == "no"
    assert host["Init"] is True
    assert host["Privileged"] is False
    engine_limit = engine_open_files_limit(runtime.endpoint.removeprefix("unix://"))
    wanted = min(DEFAULT_NOFILE_LIMIT, engine_limit or DEFAULT_NOFILE_LIMIT)
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": wanted, "Hard": wanted}]

    status = runtime.exec(info.id, ["cat", "/proc/self/status"], timeout_s=5).output
    assert "CapEff:\t0000000000000000" in status
    assert "NoNewPrivs:\t1" in status
    limits = runtime.exec(info.id, ["sh", "-c", "ulimit -n; id -u"], timeout_s=5).output.split()
    assert limits == [str(wanted), "10001"]


def test_named_bind_and_tmpfs_volumes(
    runtime: DockerRuntime, realm: str, tmp_path: Path, engine: docker.DockerClient
) -> None:
    (tmp_path / "model.txt").write_text("weights\n")
    tmp_path.chmod(0o755)
    volume_name = f"{realm}-cache"
    volumes = [
        spec_pb2.VolumeMount(
            kind=spec_pb2.VOLUME_KIND_BIND, source=str(tmp_path), target="/models", read_only=True
        ),
        spec_pb2.VolumeMount(kind=spec_pb2.VOLUME_KIND_NAMED, source=volume_name, target="/cache"),
        spec_pb2.VolumeMount(
            kind=spec_pb2.VOLUME_KIND_TMPFS, target="/scratch", tmpfs_size_bytes=8 << 20
        ),
    ]
    info = start_service(runtime, _idle(realm, volumes=volumes))

    def run(*argv: str) -> str:
        return runtime.exec(info.id, list(argv), timeout_s=5).output

    assert run("cat", "/models/model.txt") == "weights\n"
    assert "Read-only file system" in run("touch", "/models/new")
    mounts = run("cat", "/proc/mounts")
    assert any(" /scratch tmpfs " in line and "size=8192k" in line for line in mounts.splitlines())
    volume = engine.volumes.get(volume_name)
    assert volume.attrs["Labels"]["ozwald.agent"] == runtime.agent_id
    runtime.remove(info.id, force=True)
    assert engine.volumes.get(volume_name)  # named volumes outlive their containers


def test_a_missing_bind_source_is_named(runtime: DockerRuntime, realm: str, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    bind = spec_pb2.VolumeMount(kind=spec_pb2.VOLUME_KIND_BIND, source=str(missing), target="/data")

    with pytest.raises(MountSourceMissingError, match=str(missing)):
        runtime.create(_idle(realm, volumes=[bind]), fingerprint="fp")
