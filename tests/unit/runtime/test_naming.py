"""Deterministic names: the duplicate guard after an agent crash."""

from __future__ import annotations

import pytest

from ozwald_agent.runtime.errors import InvalidSpecError
from ozwald_agent.runtime.naming import (
    container_name,
    declared_network_name,
    is_dns_label,
    realm_network_name,
)


def test_names_are_built_from_realm_and_service() -> None:
    assert container_name("main", "embed") == "ozwald-main-embed"
    assert container_name("main", "embed", prefix="sim3") == "sim3-main-embed"
    assert realm_network_name("main") == "ozwald-main"
    assert declared_network_name("main", "backend") == "ozwald-main-backend"


@pytest.mark.parametrize("bad", ["", "-web", "we b", "web/1", "wéb", "_x"])
def test_a_name_docker_cannot_take_is_refused(bad: str) -> None:
    with pytest.raises(InvalidSpecError, match="cannot be used in a Docker name"):
        container_name("main", bad)


def test_dns_labels() -> None:
    assert is_dns_label("embed-2")
    assert not is_dns_label("embed_2")
    assert not is_dns_label("a" * 64)
    assert not is_dns_label("-a")
