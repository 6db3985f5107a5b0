"""Host facts that need no engine: can a port be bound, does a path exist."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from ozwald_agent.runtime.host_facts import DockerHostFacts, bind_problem


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield int(server.getsockname()[1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_free_port_can_be_bound() -> None:
    assert bind_problem("127.0.0.1", _free_port()) is None


def test_a_listening_port_is_in_use_on_its_address_and_on_the_wildcard(listening: int) -> None:
    assert bind_problem("127.0.0.1", listening) == "address already in use"
    assert bind_problem("0.0.0.0", listening) == "address already in use"


def test_an_address_of_another_host_or_no_address_is_reported() -> None:
    # 192.0.2.0/24 is TEST-NET-1: never configured on a real interface.
    assert bind_problem("192.0.2.7", 8080) == "192.0.2.7 is not an address of this host"
    assert bind_problem("localhost", 8080) == "'localhost' is not an IP address"


def test_port_free_works_without_an_engine(listening: int) -> None:
    def no_engine() -> object:
        raise ConnectionError("no engine here")

    facts = DockerHostFacts(no_engine)  # type: ignore[arg-type]

    check = facts.port_free("127.0.0.1", listening)

    assert not check.free
    assert check.detail == f"127.0.0.1:{listening}: address already in use"
    assert check.container is None
    assert facts.port_free("127.0.0.1", _free_port()).free


def test_paths_and_readable_files(tmp_path: Path) -> None:
    env = tmp_path / "app.env"
    env.write_text("A=1\n")
    facts = DockerHostFacts(lambda: None)  # type: ignore[arg-type,return-value]

    assert facts.path_exists(str(tmp_path))
    assert not facts.path_exists(str(tmp_path / "missing"))
    assert facts.file_readable(str(env))
    assert not facts.file_readable(str(tmp_path))
