"""Fixtures for config tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.unit.config.support import ConfigWriter


@pytest.fixture
def write(tmp_path: Path) -> ConfigWriter:
    """Writes dedented YAML to tmp_path/ozwald.yml and returns the path."""

    def write(text: str) -> Path:
        path = tmp_path / "ozwald.yml"
        path.write_text(textwrap.dedent(text))
        return path

    return write
