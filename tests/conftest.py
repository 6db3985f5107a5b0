"""Suite-wide options: GPU tests run only where a GPU is, by asking for them."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-gpu",
        action="store_true",
        help="run tests marked gpu (needs an NVIDIA GPU and its driver; see `make gpu-check`)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-gpu"):
        return
    no_gpu = pytest.mark.skip(reason="needs an NVIDIA GPU: run `make gpu-check` on a GPU host")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(no_gpu)
