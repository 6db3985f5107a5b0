"""The real vLLM CPU service for end-to-end tests: its image, its model, its config."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
VLLM_CPU_IMAGE = "ozwald/vllm-cpu:local"
QUICKSTART_CONFIG = ROOT / "examples" / "quickstart" / "ozwald.yml"
QUICKSTART_MODELS = ROOT / "examples" / "quickstart" / "models"
CATALOGUE_CONFIG = ROOT / "examples" / "vllm" / "ozwald.yml"


def build_vllm_cpu_image() -> None:
    """Build the image unless it is up to date (the script skips in well under a second)."""
    subprocess.run(["bash", str(ROOT / "scripts" / "build-vllm-cpu-image.sh")], check=True)


def fetch_embedding_model() -> Path:
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "fetch-embedding-model.sh"), str(QUICKSTART_MODELS)],
        check=True,
    )
    return QUICKSTART_MODELS


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def relocated_example(
    example: Path, directory: Path, realm: str, portal_ports: dict[str, int]
) -> Path:
    """An example's ozwald.yml as it ships, moved to `realm` and written into `directory`.

    The example is read, not copied by hand, so these tests run what users run; only the
    realm, the portals' host ports and the `models` volume's source (absolute, since the
    file moves) change. Relative paths (env files) now resolve in `directory`.
    """
    document = yaml.safe_load(example.read_text())
    (realm_body,) = document["realms"].values()
    for portal, port in portal_ports.items():
        realm_body["portals"][portal]["host_port"] = port
    realm_body["volumes"]["models"]["source"] = str(QUICKSTART_MODELS)
    document["realms"] = {realm: realm_body}
    path = directory / f"{realm}.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def quickstart_config(directory: Path, realm: str, port: int) -> Path:
    """The quickstart example in `realm`, its portal on `port`."""
    return relocated_example(QUICKSTART_CONFIG, directory, realm, {"embed-api": port})
