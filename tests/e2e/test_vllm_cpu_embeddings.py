"""The quickstart's real vLLM CPU service, provisioned by a real agent, answering the
official openai client; what a user does in their first five minutes."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from openai import OpenAI

from tests.e2e.vllm_cpu import free_port, quickstart_config
from tests.integration.agent_process import RunningAgent, start_agent
from tests.integration.provisioning_support import new_realm, realm_cleanup
from tests.support.short_paths import short_tmpdir

OZWALD = [sys.executable, "-m", "ozwald_sdk.cli.main"]


@dataclass(frozen=True)
class Provisioned:
    agent: RunningAgent
    realm: str
    port: int
    config: Path

    def ozwald(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*OZWALD, *args, "--agent", self.agent.target],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )


@pytest.fixture(scope="module")
def embed(vllm_cpu_image: str, embedding_models: Path) -> Iterator[Provisioned]:
    """`ozwald update_services embed --wait` of the quickstart example, once per module."""
    realm = new_realm()
    port = free_port()
    with short_tmpdir() as workdir, realm_cleanup(realm):
        agent = start_agent(workdir)
        try:
            provisioned = Provisioned(agent, realm, port, quickstart_config(workdir, realm, port))
            done = provisioned.ozwald(
                "update_services", "--config", str(provisioned.config), f"{realm}:embed", "--wait"
            )
            assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{agent.logs()}"
            yield provisioned
        finally:
            assert agent.terminate() == 0, agent.logs()


def client(port: int) -> OpenAI:
    return OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def test_the_model_answers_embeddings_through_the_openai_client(embed: Provisioned) -> None:
    response = client(embed.port).embeddings.create(
        model="embed",
        input=[
            "The cat sits on the mat.",
            "A cat is sitting on a rug.",
            "Quarterly revenue grew by eight percent.",
        ],
    )

    cat, kitten, revenue = (item.embedding for item in response.data)
    assert response.model == "embed"
    assert len(cat) == len(kitten) == len(revenue) == 384
    # A real sentence-embedding model: paraphrases are close, unrelated text is not.
    assert cosine(cat, kitten) > 0.6
    assert cosine(cat, kitten) > cosine(cat, revenue) + 0.3


def test_the_same_text_gives_the_same_vector(embed: Provisioned) -> None:
    api = client(embed.port)
    first = api.embeddings.create(model="embed", input="Ozwald").data[0].embedding
    second = api.embeddings.create(model="embed", input="Ozwald").data[0].embedding

    assert cosine(first, second) > 0.9999


def test_status_shows_it_ready_behind_its_portal(embed: Provisioned) -> None:
    shown = embed.ozwald("status", "--json")

    assert shown.returncode == 0, shown.stderr
    (service,) = [s for s in json.loads(shown.stdout)["instances"] if s["realm"] == embed.realm]
    assert service["name"] == "embed"
    assert service["state"] == "INSTANCE_STATE_READY"
    assert f"127.0.0.1:{embed.port}" in service["endpoints"]


def test_vllm_metrics_count_the_requests_it_served(embed: Provisioned) -> None:
    client(embed.port).embeddings.create(model="embed", input="count me")

    with urllib.request.urlopen(f"http://127.0.0.1:{embed.port}/metrics", timeout=10) as reply:
        metrics = reply.read().decode()

    served = [
        line
        for line in metrics.splitlines()
        if line.startswith("vllm:request_success_total") and 'model_name="embed"' in line
    ]
    assert served, "vLLM exposes no request counter for the model"
    assert sum(float(line.rsplit(" ", 1)[1]) for line in served) >= 1


def test_profile_measures_the_real_model_beside_the_running_one(embed: Provisioned) -> None:
    profiled = embed.ozwald(
        "profile", "--config", str(embed.config), f"{embed.realm}:embed", "--warmup", "8", "--json"
    )

    assert profiled.returncode == 0, f"{profiled.stdout}\n{profiled.stderr}"
    (footprint,) = [
        f
        for f in json.loads(embed.ozwald("footprints", "--json").stdout)["footprints"]
        if f["realm"] == embed.realm
    ]
    # vLLM loads torch and the model before /health answers: seconds, not milliseconds.
    assert 5 < float(footprint["time_to_ready"].rstrip("s")) < 300
    # Measured by the kernel (cgroup v1 max_usage here): more than the model's weights,
    # less than the 6 GiB limit the example declares.
    assert 512 << 20 < int(footprint["peak_memory_bytes"]) < 6 << 30
    assert footprint["memory_peak_source"] != "MEMORY_PEAK_SOURCE_UNSPECIFIED"
    warm_up = footprint["warm_up"]
    assert warm_up["api"] == "OPEN_AI_API_EMBEDDINGS"
    assert warm_up["requests"] == 8
    assert warm_up.get("errors", 0) == 0
    assert float(footprint["peak_cpu_cores"]) > 0.1

    # The copy ran in isolation: the service users reach kept answering, and is not restarted.
    test_the_same_text_gives_the_same_vector(embed)
    plan = embed.ozwald(
        "update_services", "--config", str(embed.config), f"{embed.realm}:embed", "--plan", "--json"
    )
    assert plan.returncode == 0, plan.stderr
    assert "KEEP" in plan.stdout
