"""The catalogue's embedding service (examples/vllm) in its cpu variety, as shipped, with
its api-key profile: vLLM answers only clients that present the key from the env file."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import openai
import pytest
from openai import OpenAI

from ozwald_sdk.agent_client import AgentClient
from tests.e2e.vllm_cpu import CATALOGUE_CONFIG, free_port, relocated_example
from tests.integration.agent_process import start_agent
from tests.integration.provisioning_support import new_realm, realm_cleanup
from tests.support.short_paths import short_tmpdir


def test_the_catalogue_embed_service_runs_on_the_cpu_and_demands_its_key(
    vllm_cpu_image: str, embedding_models: Path
) -> None:
    realm = new_realm()
    port = free_port()
    key = secrets.token_hex(16)
    with short_tmpdir() as workdir, realm_cleanup(realm):
        config = relocated_example(
            CATALOGUE_CONFIG, workdir, realm, {"embed-api": port, "chat-api": free_port()}
        )
        (workdir / "vllm-api-key.env").write_text(f"VLLM_API_KEY={key}\n")
        agent = start_agent(workdir)
        try:
            # No variety named: this GPU-less host gets the cpu one.
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "ozwald_sdk.cli.main",
                    "update_services",
                    "--agent",
                    agent.target,
                    "--config",
                    str(config),
                    f"{realm}:embed[][api-key]",
                    "--wait",
                ],
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{agent.logs()}"
            with AgentClient(agent.target) as client:
                (status,) = client.list_services(realm=realm).instances
            assert (status.variety, status.profile) == ("cpu", "api-key")

            base_url = f"http://127.0.0.1:{port}/v1"
            with_key = OpenAI(base_url=base_url, api_key=key, max_retries=0)
            vector = with_key.embeddings.create(model="embed", input="hi").data[0].embedding
            assert len(vector) == 384

            wrong_key = OpenAI(base_url=base_url, api_key="not-the-key", max_retries=0)
            with pytest.raises(openai.AuthenticationError):
                wrong_key.embeddings.create(model="embed", input="hi")
        finally:
            assert agent.terminate() == 0, agent.logs()
