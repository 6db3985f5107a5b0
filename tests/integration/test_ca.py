"""Certificates from `ozwald ca` (the real CLI, in a subprocess) on a real gRPC server that
demands client certificates: one the CA issued gets through; none, an expired one, one
from another CA, and a server certificate used as a client one are refused in the TLS
handshake, before any handler runs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from ozwald.agent.v1 import agent_service_pb2_grpc
from ozwald.agent.v1.agent_service_pb2 import GetHostProfileRequest

from ozwald_sdk.agent_client import AgentClient
from ozwald_sdk.errors import AgentUnreachableError
from ozwald_sdk.retry import RetryPolicy
from ozwald_sdk.target import TlsFiles, resolve_target
from ozwald_sdk.testing import FakeAgent, ServerTls, serve_agent

pytestmark = pytest.mark.integration

ONE_TRY = RetryPolicy(max_attempts=1)


def ozwald(*argv: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ozwald_sdk.cli.main", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@dataclass(frozen=True)
class Pki:
    ca_dir: Path
    foreign_dir: Path

    def files(self, name: str, directory: Path | None = None) -> TlsFiles:
        where = directory or self.ca_dir
        return TlsFiles(
            ca=self.ca_dir / "ca.crt", cert=where / f"{name}.crt", key=where / f"{name}.key"
        )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    ca_dir, foreign_dir = root / "fleet-ca", root / "other-ca"
    ozwald("ca", "init", "--dir", str(ca_dir))
    ozwald("ca", "issue", "--dir", str(ca_dir), "--role", "orchestrator", "orch")
    ozwald("ca", "issue", "--dir", str(ca_dir), "--role", "operator", "alice")
    ozwald("ca", "issue", "--dir", str(ca_dir), "--role", "agent", "gpu-01")
    ozwald(
        "ca", "issue", "--dir", str(ca_dir), "--role", "agent", "stale", "--not-after",
        "2021-06-01T00:00:00Z",
    )  # fmt: skip
    ozwald("ca", "init", "--dir", str(foreign_dir))
    ozwald("ca", "issue", "--dir", str(foreign_dir), "--role", "operator", "mallory")
    return Pki(ca_dir, foreign_dir)


@pytest.fixture(scope="module")
def server(pki: Pki) -> Iterator[tuple[str, FakeAgent]]:
    fake = FakeAgent()
    tls = ServerTls(
        cert=(pki.ca_dir / "orch.crt").read_bytes(),
        key=(pki.ca_dir / "orch.key").read_bytes(),
        client_ca=(pki.ca_dir / "ca.crt").read_bytes(),
    )
    with serve_agent(fake, tls=tls) as address:
        yield address, fake


def call_with(address: str, files: TlsFiles) -> str:
    target = resolve_target(address, tls_ca=files.ca, tls_cert=files.cert, tls_key=files.key)
    with AgentClient(target, timeout=5, retry=ONE_TRY) as client:
        return client.get_host_profile().hostname


@pytest.mark.parametrize("name", ["alice", "gpu-01"])
def test_a_certificate_the_ca_issued_gets_through(
    pki: Pki, server: tuple[str, FakeAgent], name: str
) -> None:
    address, _ = server

    assert call_with(address, pki.files(name)) == "fake-host"


def test_a_client_without_a_certificate_is_refused(pki: Pki, server: tuple[str, FakeAgent]) -> None:
    address, fake = server
    before = len(fake.calls)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=(pki.ca_dir / "ca.crt").read_bytes()
    )

    with grpc.secure_channel(address, credentials) as channel:
        stub = agent_service_pb2_grpc.AgentServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.GetHostProfile(GetHostProfileRequest(), timeout=5)

    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert len(fake.calls) == before, "no handler ran"


@pytest.mark.parametrize(
    ("name", "from_foreign_ca"),
    [
        ("stale", False),  # expired in 2021
        ("mallory", True),  # signed by another CA
        ("orch", False),  # a server certificate: serverAuth only, not clientAuth
    ],
)
def test_a_bad_client_certificate_is_refused_in_the_handshake(
    pki: Pki, server: tuple[str, FakeAgent], name: str, from_foreign_ca: bool
) -> None:
    address, fake = server
    before = len(fake.calls)
    files = pki.files(name, pki.foreign_dir if from_foreign_ca else None)

    with pytest.raises(AgentUnreachableError) as raised:
        call_with(address, files)

    assert raised.value.code == grpc.StatusCode.UNAVAILABLE
    assert len(fake.calls) == before, "no handler ran"


def test_the_expired_certificate_really_is_one(pki: Pki) -> None:
    cert = x509.load_pem_x509_certificate((pki.ca_dir / "stale.crt").read_bytes())
    assert cert.not_valid_after_utc.year == 2021
    # Signed by the right CA: only its age gets it refused.
    ca_cert = x509.load_pem_x509_certificate((pki.ca_dir / "ca.crt").read_bytes())
    cert.verify_directly_issued_by(ca_cert)
