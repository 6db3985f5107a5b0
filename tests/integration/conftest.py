"""Fixtures that start real agents (and need a real Docker Engine beside them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.agent_process import RunningAgent, start_agent
from tests.integration.provisioning_support import ensure_tiny_image, new_realm, realm_cleanup
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


@pytest.fixture(scope="session")
def tiny_image() -> None:
    """ozwald/tiny:local, built when missing (modules ask with `usefixtures`)."""
    ensure_tiny_image()


@pytest.fixture
def realm() -> Iterator[str]:
    """A realm of the test's own; every container, network and volume of it is removed at
    the end, whatever happened."""
    name = new_realm()
    with realm_cleanup(name):
        yield name
