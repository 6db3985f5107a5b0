"""Effective spec = base, then variety, then profile, by the documented per-field rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from ozwald_sdk.config import Config, load_config, resolve
from ozwald_sdk.config.merge import merge_layers
from tests.unit.config.support import ConfigWriter, position, rendered

GIB = 1024**3


@pytest.fixture
def config(write: ConfigWriter) -> Config:
    return load_config(
        write(
            """\
            version: 1
            realms:
              default:
                networks: {front: {}, back: {internal: true}}
                volumes:
                  models: {type: bind, source: ./models}
                  cache: {type: named}
                  fast-cache: {type: tmpfs, size: 1GiB}
                services:
                  embed:
                    image: embed:base
                    command: [serve, --port, "8000"]
                    connector_port: 8000
                    networks: [front]
                    environment: {A: base, B: base, C: base}
                    labels: {team: search, tier: base}
                    volumes: ["models:/models:ro", "cache:/cache"]
                    health_check: {http: {path: /health}, interval: 10s, retries: 5}
                    resources: {memory: 8GiB, gpus: {count: 1, vram_per_gpu: 8GiB}}
                    restart: {policy: always}
                    varieties:
                      nvidia:
                        image: embed:cuda
                        environment: {B: nvidia}
                        resources: {gpus: {ids: [GPU-aaaa, GPU-bbbb]}}
                        volumes: ["fast-cache:/cache"]
                      amdgpu:
                        environment: {C: null}
                        health_check: {command: [probe]}
                      cpu:
                        image: embed:cpu
                        command: [serve-cpu]
                        networks: [back]
                        resources: {gpus: null, cpus: 2}
                        health_check: null
                    profiles:
                      fast:
                        environment: {A: fast}
                        labels: {tier: fast}
                        connector_port: 9000
                        volumes: [{source: ./extra, target: /extra}]
                        resources: {gpus: {vram_per_gpu: 16GiB}}
                      pinned:
                        image: embed:pinned
            """
        )
    )


def test_maps_merge_key_by_key_and_null_removes(config: Config) -> None:
    assert resolve(config, "embed[nvidia][fast]").environment == {
        "A": "fast",
        "B": "nvidia",
        "C": "base",
    }
    assert resolve(config, "embed[amdgpu]").environment == {"A": "base", "B": "base"}
    assert resolve(config, "embed[cpu][fast]").labels == {"team": "search", "tier": "fast"}


def test_nested_objects_merge_key_by_key(config: Config) -> None:
    nvidia = resolve(config, "embed[nvidia][fast]").resources
    assert nvidia.memory == 8 * GIB
    assert nvidia.gpus is not None
    # ids from the variety replaced the base's count; the profile changed only the VRAM.
    assert (nvidia.gpus.count, nvidia.gpus.ids, nvidia.gpus.vram_per_gpu) == (
        2,
        ("GPU-aaaa", "GPU-bbbb"),
        16 * GIB,
    )
    assert nvidia.gpus.vendor == "nvidia"
    amd = resolve(config, "embed[amdgpu]").resources
    assert amd.gpus is not None
    assert (amd.gpus.count, amd.gpus.vendor, amd.gpus.ids) == (1, "amd", ())


def test_http_and_command_health_checks_replace_each_other(config: Config) -> None:
    check = resolve(config, "embed[amdgpu]").health_check
    assert check is not None
    assert (check.http, check.command) == (None, ("probe",))
    # The timing set on the base still applies.
    assert (check.interval, check.retries) == (10.0, 5)


def test_null_removes_a_field_so_its_default_applies(config: Config) -> None:
    cpu = resolve(config, "embed[cpu]")
    assert cpu.health_check is None
    assert cpu.resources.gpus is None
    assert cpu.resources.cpus == 2.0


def test_volumes_merge_by_container_path(config: Config, tmp_path: Path) -> None:
    mounts = resolve(config, "embed[nvidia][fast]").volumes
    assert [(m.target, m.type, m.source, m.read_only) for m in mounts] == [
        ("/models", "bind", str(tmp_path / "models"), True),
        ("/cache", "tmpfs", None, False),  # the variety's mount at /cache replaced the base's
        ("/extra", "bind", str(tmp_path / "extra"), False),  # the profile's is added
    ]
    assert mounts[1].size == GIB
    base_cache = resolve(config, "embed[cpu]").volumes[1]
    assert (base_cache.type, base_cache.source, base_cache.volume) == (
        "named",
        "ozwald-default_cache",
        "cache",
    )


def test_lists_and_scalars_replace(config: Config) -> None:
    cpu = resolve(config, "embed[cpu][fast]")
    assert cpu.command == ("serve-cpu",)
    assert [n.name for n in cpu.networks] == [None, "back"]
    assert cpu.connector_port == 9000
    assert resolve(config, "embed[nvidia]").command == ("serve", "--port", "8000")


def test_the_image_is_the_profiles_else_the_varietys_else_the_base(config: Config) -> None:
    assert resolve(config, "embed[nvidia]").image == "embed:cuda"
    assert resolve(config, "embed[amdgpu]").image == "embed:base"
    assert resolve(config, "embed[cpu][pinned]").image == "embed:pinned"


def test_a_variety_never_takes_another_varietys_image(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              embed:
                varieties:
                  nvidia: {image: embed:cuda}
                  cpu: {command: [serve]}
                profiles:
                  fast: {environment: {A: "1"}}
        """
    )
    assert rendered(path) == [
        f"{position(path, '{command')}: realms.default.services.embed.varieties.cpu: service "
        "'embed' (variety cpu) has no image: set one on the service, in varieties.cpu, or in "
        "the profile"
    ]


def test_shared_network_first_then_declared_ones(config: Config) -> None:
    networks = resolve(config, "embed[cpu]").networks
    assert [(n.name, n.docker_name, n.internal) for n in networks] == [
        (None, "ozwald-default", False),
        ("back", "ozwald-default_back", True),
    ]


def test_defaults_fill_what_no_layer_sets(write: ConfigWriter) -> None:
    path = write(
        """\
        version: 1
        realms:
          default:
            services:
              echo: {image: x, connector_port: 80, health_check: {http: {}}}
        """
    )
    spec = resolve(load_config(path), "echo")
    assert spec.variety is None
    assert spec.profile is None
    assert (spec.command, spec.entrypoint) == (None, None)
    assert spec.health_check is not None
    assert spec.health_check.http is not None
    assert (spec.health_check.http.path, spec.health_check.http.port) == ("/health", 80)
    assert (
        spec.health_check.start_period,
        spec.health_check.interval,
        spec.health_check.timeout,
        spec.health_check.retries,
    ) == (60.0, 10.0, 5.0, 3)
    assert (spec.restart.policy, spec.restart.max_retries) == ("on-failure", None)
    assert spec.resources.gpus is None


def test_merge_layers_directly() -> None:
    merged = merge_layers(
        [
            {"environment": {"A": "1"}, "volumes": ({"target": "/a", "volume": "x"},)},
            {"environment": {"A": None, "B": "2"}, "image": "i"},
            {"volumes": ({"target": "/a", "source": "./y"}, {"target": "/b", "volume": "z"})},
        ]
    )
    assert merged == {
        "environment": {"B": "2"},
        "volumes": ({"target": "/a", "source": "./y"}, {"target": "/b", "volume": "z"}),
        "image": "i",
    }
