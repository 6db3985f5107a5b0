"""Every config under examples/ is valid, and the tiny one runs on a host without GPUs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ozwald_sdk.config import load_config, resolve, resolve_all
from tests.unit.config.support import host

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
CONFIGS = sorted(EXAMPLES.rglob("*.yml")) + sorted(EXAMPLES.rglob("*.yaml"))


def test_there_are_examples() -> None:
    assert {p.relative_to(EXAMPLES).as_posix() for p in CONFIGS} >= {
        "tiny/ozwald.yml",
        "vllm/ozwald.yml",
    }


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.relative_to(EXAMPLES).as_posix())
def test_example_is_valid_and_points_editors_at_the_schema(path: Path) -> None:
    load_config(path)
    first_line = path.read_text().splitlines()[0]
    assert (
        first_line == "# yaml-language-server: $schema=../../ozwald_sdk/config/ozwald.schema.json"
    )
    assert (path.parent / first_line.split("=", 1)[1]).resolve().is_file()


def test_tiny_runs_on_a_cpu_only_host() -> None:
    specs = resolve_all(load_config(EXAMPLES / "tiny" / "ozwald.yml"), host())
    by_name = {s.name: s for s in specs}
    assert set(by_name) == {"echo", "caller", "keeper"}
    assert {s.image for s in specs} == {"ozwald/tiny:local"}
    assert by_name["caller"].depends_on == ("echo",)
    assert by_name["keeper"].persistent
    assert [(p.host_ip, p.host_port, p.container_port) for p in by_name["echo"].portals] == [
        ("127.0.0.1", 18080, 8080)
    ]
    for spec in specs:
        assert spec.networks[0].docker_name == "ozwald-default"


def test_vllm_varieties_follow_the_host() -> None:
    config = load_config(EXAMPLES / "vllm" / "ozwald.yml")
    cpu = resolve(config, "embed", host())
    assert cpu.variety == "cpu"
    assert cpu.resources.gpus is None
    assert cpu.resources.shm_size == 1024**3
    assert cpu.entrypoint == ("python", "-m", "vllm.entrypoints.openai.api_server")
    assert cpu.command is not None
    assert {"--runner=pooling", "--enforce-eager", "--gpu-memory-utilization=0.3"} <= set(
        cpu.command
    )
    nvidia = resolve(config, "chat[][tp2]", host(nvidia=True))
    assert nvidia.variety == "nvidia"
    assert nvidia.resources.gpus is not None
    assert (nvidia.resources.gpus.count, nvidia.resources.gpus.vendor) == (2, "nvidia")
    assert nvidia.command is not None
    assert "--tensor-parallel-size=2" in nvidia.command
    amd = resolve(config, "chat[][long-context]", host(amd=True))
    assert amd.variety == "amdgpu"
    assert amd.command is not None
    assert "--max-model-len=32768" in amd.command
