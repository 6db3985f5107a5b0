"""Fixtures that start real agents (and need a real Docker Engine beside them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.agent_process import RunningAgent, start_agent
from tests.support.short_paths import short_tmpdir


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in item.nodeid:
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def workdir() -> Iterator[Path]:
    with short_tmpdir() as path:
        yield path


@pytest.fixture
def agent(workdir: Path) -> Iterator[RunningAgent]:
    """A real ozwald-agent serving on a unix socket of its own; stopped with SIGTERM."""
    running = start_agent(workdir)
    yield running
    code = running.terminate()
    assert code == 0, f"agent exited with {code} on SIGTERM:\n{running.logs()}"
