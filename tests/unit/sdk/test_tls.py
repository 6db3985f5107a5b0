"""TCP to an agent: mutual TLS works, and TLS that does not match fails clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
from ozwald.common.v1.host_profile_pb2 import HostProfile

from ozwald_sdk.agent_client import AgentClient
from ozwald_sdk.errors import AgentUnreachableError
from ozwald_sdk.retry import RetryPolicy
from ozwald_sdk.target import resolve_target
from ozwald_sdk.testing import FakeAgent, serve_agent
from tests.support.certificates import Authority, client_files, server_tls

PROFILE = HostProfile(hostname="remote-box")
FAST_RETRY = RetryPolicy(max_attempts=2, initial_backoff=0.01, max_backoff=0.01)


@pytest.fixture(scope="module")
def fleet_ca() -> Authority:
    return Authority("ozwald fleet CA")


def test_tcp_with_mutual_tls_reaches_the_agent(tmp_path: Path, fleet_ca: Authority) -> None:
    fake = FakeAgent(PROFILE)
    files = client_files(tmp_path, server_ca=fleet_ca, client_ca=fleet_ca)
    with serve_agent(fake, tls=server_tls(fleet_ca, client_ca=fleet_ca)) as address:
        target = resolve_target(address, tls_ca=files.ca, tls_cert=files.cert, tls_key=files.key)
        with AgentClient(target, correlation_id="over-tcp") as client:
            assert client.get_host_profile(timeout=5) == PROFILE
    [call] = fake.calls
    assert call.correlation_id == "over-tcp"


def test_tls_files_from_the_environment_are_used(
    tmp_path: Path, fleet_ca: Authority, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = client_files(tmp_path, server_ca=fleet_ca, client_ca=fleet_ca)
    monkeypatch.setenv("OZWALD_TLS_CA", str(files.ca))
    monkeypatch.setenv("OZWALD_TLS_CERT", str(files.cert))
    monkeypatch.setenv("OZWALD_TLS_KEY", str(files.key))
    with (
        serve_agent(FakeAgent(PROFILE), tls=server_tls(fleet_ca, client_ca=fleet_ca)) as address,
        AgentClient(address) as client,
    ):
        assert client.get_host_profile(timeout=5) == PROFILE


@pytest.mark.parametrize("who_is_a_stranger", ["client", "server"])
def test_certificates_from_another_ca_fail_with_a_tls_hint(
    tmp_path: Path, fleet_ca: Authority, who_is_a_stranger: str
) -> None:
    stranger = Authority("some other CA")
    client_ca = stranger if who_is_a_stranger == "client" else fleet_ca
    server_ca = stranger if who_is_a_stranger == "server" else fleet_ca
    fake = FakeAgent(PROFILE)
    files = client_files(tmp_path, server_ca=fleet_ca, client_ca=client_ca)
    with serve_agent(fake, tls=server_tls(server_ca, client_ca=fleet_ca)) as address:
        target = resolve_target(address, tls_ca=files.ca, tls_cert=files.cert, tls_key=files.key)
        with (
            AgentClient(target, retry=FAST_RETRY) as client,
            pytest.raises(AgentUnreachableError) as raised,
        ):
            client.get_host_profile(timeout=5)
    assert address in raised.value.message
    assert "--tls-ca" in raised.value.remedy
    assert fake.calls == []
