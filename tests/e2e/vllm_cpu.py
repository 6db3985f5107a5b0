"""The real vLLM CPU service for end-to-end tests: its image, its model, its config."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
VLLM_CPU_IMAGE = "ozwald/vllm-cpu:local"
QUICKSTART_CONFIG = ROOT / "examples" / "quickstart" / "ozwald.yml"
QUICKSTART_MODELS = ROOT / "examples" / "quickstart" / "models"


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


def quickstart_config(directory: Path, realm: str, port: int, **service_fields: Any) -> Path:
    """The quickstart example as it ships, moved to `realm` and portal `port`.

    The example is read, not copied by hand, so these tests run what users run; only
    the realm, the portal's port and the models path (absolute, since the file moves)
    change, plus any extra fields for the service.
    """
    document = yaml.safe_load(QUICKSTART_CONFIG.read_text())
    (realm_body,) = document["realms"].values()
    realm_body["portals"]["embed-api"]["host_port"] = port
    realm_body["volumes"]["models"]["source"] = str(QUICKSTART_MODELS)
    realm_body["services"]["embed"].update(service_fields)
    document["realms"] = {realm: realm_body}
    path = directory / f"{realm}.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path
