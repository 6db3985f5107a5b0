"""examples/vllm/ozwald.yml, the catalogue of vLLM definitions, resolved every way it can be.

Each service x variety x profile goes through the real loader and resolver; the facts a
user relies on (pinned images, one tensor-parallel shard per GPU, the API key only from
an env file, read-only models, the cpu recipe that runs on Ozwald's build machines) are
asserted for all of them, and docs/vllm-catalogue.md must name every one.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ozwald_sdk.config import ConfigInvalidError, EffectiveService, load_config, resolve

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "vllm" / "ozwald.yml"
CATALOGUE = ROOT / "docs" / "vllm-catalogue.md"
GIB = 1 << 30
VLLM_RELEASE = "v0.31.0"
IMAGES = {
    "nvidia": f"vllm/vllm-openai:{VLLM_RELEASE}",
    "amdgpu": f"vllm/vllm-openai-rocm:{VLLM_RELEASE}",
    "cpu": "ozwald/vllm-cpu:local",
}
EXPECTED = {
    "embed": ({"nvidia", "amdgpu", "cpu"}, {"short-inputs", "api-key"}),
    "chat": (
        {"nvidia", "amdgpu"},
        {"long-context", "half-gpu", "fp16", "served-name", "tp2", "tp4"},
    ),
}


def _selectors() -> list[str]:
    return [
        f"{name}[{variety}][{profile or ''}]"
        for name, (varieties, profiles) in EXPECTED.items()
        for variety in sorted(varieties)
        for profile in [None, *sorted(profiles)]
    ]


def _flags(spec: EffectiveService) -> dict[str, str]:
    assert spec.command is not None
    return dict(w.removeprefix("--").split("=", 1) for w in spec.command if "=" in w)


def test_the_catalogue_defines_exactly_the_documented_services() -> None:
    config = load_config(EXAMPLE)
    services = config.model.realms["default"].services
    assert {name: (set(s.varieties), set(s.profiles)) for name, s in services.items()} == EXPECTED


@pytest.mark.parametrize("selector", _selectors())
def test_every_selector_resolves_to_a_runnable_vllm_server(selector: str) -> None:
    spec = resolve(load_config(EXAMPLE), selector)
    assert spec.variety is not None
    assert spec.image == IMAGES[spec.variety]
    flags = _flags(spec)
    assert flags["host"] == "0.0.0.0"
    assert flags["port"] == str(spec.connector_port) == "8000"
    assert flags["model"].startswith("/models/")
    assert all("${" not in word for word in spec.command or ())
    models = [m for m in spec.volumes if m.target == "/models"]
    assert [(m.type, m.read_only, m.source) for m in models] == [
        ("bind", True, str(EXAMPLE.parent / "models"))
    ]
    assert spec.environment["HF_HUB_OFFLINE"] == "1"
    assert spec.resources.shm_size is not None and spec.resources.shm_size >= GIB
    assert spec.health_check is not None and spec.health_check.http is not None
    assert spec.health_check.http.path == "/health"
    # A key never sits in ozwald.yml: not in the environment, not as a flag.
    assert "VLLM_API_KEY" not in spec.environment
    assert "api-key" not in flags
    if spec.variety == "cpu":
        assert spec.resources.gpus is None
    else:
        assert spec.resources.gpus is not None
        assert spec.resources.gpus.vendor == {"nvidia": "nvidia", "amdgpu": "amd"}[spec.variety]


@pytest.mark.parametrize("selector", [s for s in _selectors() if s.startswith("chat")])
def test_chat_runs_one_tensor_parallel_shard_per_gpu_and_asks_for_its_key(selector: str) -> None:
    spec = resolve(load_config(EXAMPLE), selector)
    assert spec.resources.gpus is not None
    assert _flags(spec)["tensor-parallel-size"] == str(spec.resources.gpus.count)
    assert [p.name for p in spec.env_files] == ["vllm-api-key.env"]


def test_tensor_parallel_profiles_set_the_gpu_count_once() -> None:
    config = load_config(EXAMPLE)
    for profile, count in (("tp2", 2), ("tp4", 4)):
        written = config.model.realms["default"].services["chat"].profiles[profile]
        assert written.environment is None and written.command is None
        spec = resolve(config, f"chat[nvidia][{profile}]")
        assert spec.resources.gpus is not None and spec.resources.gpus.count == count
        assert f"--tensor-parallel-size={count}" in (spec.command or ())


def test_gpu_images_are_one_pinned_vllm_release() -> None:
    config = load_config(EXAMPLE)
    for name in EXPECTED:
        for variety in ("nvidia", "amdgpu"):
            image = resolve(config, f"{name}[{variety}]").image
            assert re.fullmatch(r"vllm/vllm-openai(-rocm)?:v\d+\.\d+\.\d+", image), image


def test_the_cpu_embed_is_the_recipe_that_runs_on_the_build_machines() -> None:
    spec = resolve(load_config(EXAMPLE), "embed[cpu]")
    assert spec.image == "ozwald/vllm-cpu:local"
    assert spec.entrypoint == ("python", "-m", "vllm.entrypoints.openai.api_server")
    assert spec.command is not None
    assert {
        "--runner=pooling",
        "--enforce-eager",
        "--gpu-memory-utilization=0.3",
        "--dtype=float32",
        "--model=/models/all-MiniLM-L6-v2",
    } <= set(spec.command)
    assert spec.resources.memory == 6 * GIB
    assert spec.resources.shm_size == GIB
    assert spec.resources.gpus is None


def test_the_example_env_file_sets_only_the_key() -> None:
    spec = resolve(load_config(EXAMPLE), "chat[nvidia]")
    (path,) = spec.env_files
    lines = [
        line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    assert [line.split("=", 1)[0] for line in lines] == ["VLLM_API_KEY"]


def test_chat_has_no_cpu_variety_and_says_so() -> None:
    with pytest.raises(ConfigInvalidError, match="has no variety 'cpu'"):
        resolve(load_config(EXAMPLE), "chat[cpu]")


def test_the_catalogue_page_names_every_service_variety_and_profile() -> None:
    text = CATALOGUE.read_text()
    for name, (varieties, profiles) in EXPECTED.items():
        assert f"`{name}`" in text
        for word in varieties | profiles:
            assert f"`{word}`" in text, word
    for image in IMAGES.values():
        assert image in text
