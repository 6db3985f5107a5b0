from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from ozwald_sdk.process.unix_socket import NotASocketError, SocketInUseError, prepare_socket_path
from tests.support.short_paths import short_tmpdir


@pytest.fixture
def sockdir() -> Iterator[Path]:
    with short_tmpdir() as path:
        yield path


def test_missing_path_is_left_for_the_server_to_create(sockdir: Path) -> None:
    prepare_socket_path(sockdir / "a.sock")
    assert not (sockdir / "a.sock").exists()


def test_stale_socket_is_removed(sockdir: Path) -> None:
    path = sockdir / "a.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # bound, never listening: nobody accepts on it
    prepare_socket_path(path)
    assert not path.exists()


def test_live_socket_is_refused(sockdir: Path) -> None:
    path = sockdir / "a.sock"
    with socket.socket(socket.AF_UNIX) as live:
        live.bind(str(path))
        live.listen()
        with pytest.raises(SocketInUseError):
            prepare_socket_path(path)
    assert path.exists()


def test_regular_file_is_refused_and_kept(sockdir: Path) -> None:
    path = sockdir / "a.sock"
    path.write_text("keep me")
    with pytest.raises(NotASocketError):
        prepare_socket_path(path)
    assert path.read_text() == "keep me"
