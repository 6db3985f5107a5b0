"""EffectiveService to the ozwald.common.v1.ServiceSpec message the agent admits and runs."""

from __future__ import annotations

from pathlib import Path

from ozwald.common.v1 import gpu_pb2, service_spec_pb2

from ozwald_sdk.config import load_config, resolve
from tests.unit.config.support import ConfigWriter

GIB = 1024**3


def test_every_field_reaches_the_message(write: ConfigWriter, tmp_path: Path) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            networks: {back: {}}
            volumes:
              models: {type: bind, source: ./models}
              cache: {type: named}
              scratch: {type: tmpfs, size: 64MiB}
            portals: {api: {service: llm, host_port: 8000}}
            services:
              store: {image: s}
              llm:
                image: vllm:x
                entrypoint: [python3, -m, server]
                command: [--port, "8000"]
                environment: {B: "2", A: "1"}
                env_files: [app.env]
                volumes: ["models:/models:ro", "cache:/cache", "scratch:/tmp"]
                networks: [back]
                connector_port: 8000
                health_check: {http: {path: /health}, start_period: 1m30s, interval: 500ms}
                resources:
                  gpus: {ids: [GPU-1, "3"], vram_per_gpu: 20GiB}
                  memory: 16GiB
                  cpus: 2.5
                  shm_size: 1g
                restart: {policy: on-failure, max_retries: 4}
                depends_on: [store]
                labels: {team: ai}
                varieties: {nvidia: {}}
                profiles: {fast: {}}
        """
    )
    (tmp_path / "app.env").write_text("X=1\n")
    spec = resolve(load_config(path), "llm[nvidia][fast]").to_service_spec()
    expected = service_spec_pb2.ServiceSpec(
        realm="default",
        name="llm",
        variety="nvidia",
        profile="fast",
        image="vllm:x",
        entrypoint=["python3", "-m", "server"],
        command=["--port", "8000"],
        environment={"A": "1", "B": "2"},
        env_files=[str(tmp_path / "app.env")],
        volumes=[
            service_spec_pb2.VolumeMount(
                kind=service_spec_pb2.VOLUME_KIND_BIND,
                source=str(tmp_path / "models"),
                target="/models",
                read_only=True,
            ),
            service_spec_pb2.VolumeMount(
                kind=service_spec_pb2.VOLUME_KIND_NAMED,
                source="ozwald-default_cache",
                target="/cache",
            ),
            service_spec_pb2.VolumeMount(
                kind=service_spec_pb2.VOLUME_KIND_TMPFS,
                target="/tmp",
                tmpfs_size_bytes=64 * 1024**2,
            ),
        ],
        networks=["back"],
        connector_port=8000,
        resources=service_spec_pb2.ResourceRequirements(
            gpus=service_spec_pb2.GpuRequirement(
                count=2,
                vendor=gpu_pb2.GPU_VENDOR_NVIDIA,
                device_ids=["GPU-1", "3"],
                vram_per_gpu_bytes=20 * GIB,
            ),
            memory_bytes=16 * GIB,
            cpus=2.5,
            shm_size_bytes=GIB,
        ),
        restart_policy=service_spec_pb2.RestartPolicy(
            kind=service_spec_pb2.RESTART_POLICY_KIND_ON_FAILURE, max_retries=4
        ),
        depends_on=["store"],
        labels={"team": "ai"},
        portals=[
            service_spec_pb2.Portal(
                name="api", host_ip="127.0.0.1", host_port=8000, container_port=8000
            )
        ],
    )
    check = expected.health_check
    check.http.CopyFrom(service_spec_pb2.HttpProbe(path="/health", port=8000))
    check.start_period.FromSeconds(90)
    check.interval.FromMilliseconds(500)
    check.timeout.FromSeconds(5)
    check.retries = 3
    assert spec == expected


def test_a_plain_service_leaves_the_optional_parts_unset(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          lab:
            services:
              probe: {image: p, health_check: {command: [check]}, persistent: true}
        """
    )
    spec = resolve(load_config(path), "probe").to_service_spec()
    assert (spec.variety, spec.profile, spec.connector_port) == ("", "", 0)
    assert list(spec.command) == []
    assert spec.persistent
    assert not spec.resources.HasField("gpus")
    assert spec.health_check.WhichOneof("probe") == "command"
    assert list(spec.health_check.command.argv) == ["check"]
    assert spec.restart_policy.kind == service_spec_pb2.RESTART_POLICY_KIND_ON_FAILURE
    assert spec.restart_policy.max_retries == 0  # no limit
