"""End-to-end fixtures: the real vLLM CPU image and model, built or fetched when missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.vllm_cpu import build_vllm_cpu_image, fetch_embedding_model

# Building the image on a fresh machine (about 1 GB of wheels, then pip inside) takes
# minutes; the first test that needs it pays for it.
E2E_TIMEOUT_S = 1200


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in item.nodeid:
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.timeout(E2E_TIMEOUT_S))


@pytest.fixture(scope="session")
def vllm_cpu_image() -> str:
    build_vllm_cpu_image()
    return "ozwald/vllm-cpu:local"


@pytest.fixture(scope="session")
def embedding_models() -> Path:
    return fetch_embedding_model()
