"""Certificates for a simulated fleet, made with the fleet's own CA tooling (ozwald_sdk.ca).

Every simulated agent needs its own client certificate (the orchestrator takes the host
id from its CN), so a fleet of thousands needs thousands of certificates. They are issued
once into a directory and reused when the same directory serves another run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ozwald_sdk import ca
from ozwald_testbed.simulated_agent import AgentCredentials


@dataclass(frozen=True)
class ServerFiles:
    """What the orchestrator's TLS flags point at."""

    cert: Path
    key: Path
    client_ca: Path


@dataclass(frozen=True)
class ClientFiles:
    """An operator's TLS material for FleetService over TCP."""

    ca: Path
    cert: Path
    key: Path


class FleetPki:
    """A CA in `directory` (made when missing) and the certificates it issued."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        key, cert = ca.CaFiles.in_directory(directory)
        if not (key.exists() and cert.exists()):
            ca.init_ca(directory, name="Ozwald simulated fleet CA")
        self.ca_cert = cert
        self._ca_pem = cert.read_bytes()
        self._issued = directory / "issued"

    def orchestrator(self, sans: tuple[str, ...] = ("localhost", "127.0.0.1")) -> ServerFiles:
        cert, key = self._files("orchestrator", "orchestrator", sans)
        return ServerFiles(cert=cert, key=key, client_ca=self.ca_cert)

    def operator(self, name: str = "operator") -> ClientFiles:
        cert, key = self._files("operator", name)
        return ClientFiles(ca=self.ca_cert, cert=cert, key=key)

    def agent(self, host_id: str) -> AgentCredentials:
        """The credentials of the agent whose host id is `host_id` (CN), role agent (OU)."""
        cert, key = self._files("agent", host_id)
        return AgentCredentials(
            root_certificates=self._ca_pem,
            certificate_chain=cert.read_bytes(),
            private_key=key.read_bytes(),
        )

    def foreign_agent(self, host_id: str) -> AgentCredentials:
        """Credentials from another CA, which the orchestrator must refuse."""
        other = FleetPki(self.directory / "foreign-ca")
        issued = other.agent(host_id)
        return AgentCredentials(
            root_certificates=self._ca_pem,
            certificate_chain=issued.certificate_chain,
            private_key=issued.private_key,
        )

    def _files(self, role: ca.Role, name: str, sans: tuple[str, ...] = ()) -> tuple[Path, Path]:
        out = self._issued / role
        cert, key = out / f"{name}.crt", out / f"{name}.key"
        if not (cert.exists() and key.exists()):
            issued = ca.issue(self.directory, role, name, sans=sans, out=out, force=True)
            cert, key = issued.cert, issued.key
        return cert, key
