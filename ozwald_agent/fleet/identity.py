"""The agent's fleet identity: its client certificate, key and the orchestrator's CA.

The host id is the certificate's common name, and the orchestrator accepts only
certificates whose organizational unit (the role `ozwald ca issue` writes) is `agent`.
Files that can never work (unreadable, not PEM, a key of another certificate, no common
name, another role) are an error at start, with its remedy, instead of a link that keeps
failing in the log. An expired certificate is only reported (`expiry_problem`): the agent
still runs its host, the orchestrator refuses the link until the files are renewed, and
the link picks renewed files up at its next attempt.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ozwald_sdk.ca import identity_of_certificate

AGENT_ROLE = "agent"
_ISSUE = "issue one with `ozwald ca issue --dir CA_DIR --role agent HOST_ID`"


class FleetIdentityError(Exception):
    """The fleet TLS files cannot identify this agent; `remedy` says what to do."""

    def __init__(self, message: str, remedy: str) -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy


@dataclass(frozen=True)
class FleetCredentials:
    """PEM bytes for mutual TLS with the orchestrator, and the host id they carry."""

    ca: bytes
    cert: bytes
    key: bytes
    host_id: str
    not_after: datetime.datetime

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca, private_key=self.key, certificate_chain=self.cert
        )


def load_credentials(ca: Path, cert: Path, key: Path) -> FleetCredentials:
    """Reads and checks the three files; raises FleetIdentityError."""
    ca_pem = _read(ca, "--fleet-ca", "the CA certificate that signed the orchestrator's")
    cert_pem = _read(cert, "--fleet-cert", "this agent's client certificate")
    key_pem = _read(key, "--fleet-key", "this agent's private key")
    try:
        x509.load_pem_x509_certificates(ca_pem)
    except ValueError as e:
        raise FleetIdentityError(
            f"--fleet-ca {ca} holds no PEM certificate: {e}",
            "give the CA certificate (PEM) that signed the orchestrator's server certificate",
        ) from e
    try:
        certificate = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as e:
        raise FleetIdentityError(
            f"--fleet-cert {cert} holds no PEM certificate: {e}", _ISSUE
        ) from e
    try:
        private_key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as e:
        raise FleetIdentityError(
            f"--fleet-key {key} holds no unencrypted PEM private key: {e}",
            "give the key issued with the certificate (PEM, not protected by a passphrase)",
        ) from e
    if private_key.public_key() != certificate.public_key():
        raise FleetIdentityError(
            f"--fleet-key {key} does not belong to the certificate {cert}",
            "give the key that was issued together with that certificate",
        )
    identity = identity_of_certificate(certificate)
    host_id, role = identity.name, identity.role
    if not host_id:
        raise FleetIdentityError(
            f"--fleet-cert {cert} has no common name, so it names no host", _ISSUE
        )
    if role != AGENT_ROLE:
        raise FleetIdentityError(
            f"--fleet-cert {cert} is issued for role {role or '(none)'!r}, not "
            f"{AGENT_ROLE!r}: the orchestrator accepts only agent certificates on its link",
            _ISSUE,
        )
    return FleetCredentials(
        ca=ca_pem,
        cert=cert_pem,
        key=key_pem,
        host_id=host_id,
        not_after=certificate.not_valid_after_utc,
    )


def expiry_problem(
    credentials: FleetCredentials, now: datetime.datetime | None = None
) -> str | None:
    """Why the orchestrator will refuse this certificate for its age; None while valid."""
    moment = now or datetime.datetime.now(datetime.UTC)
    if credentials.not_after > moment:
        return None
    return (
        f"the fleet certificate of host {credentials.host_id} expired at "
        f"{credentials.not_after.isoformat()}: the orchestrator will refuse the link until "
        f"it is renewed ({_ISSUE}, over the old files)"
    )


def _read(path: Path, flag: str, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise FleetIdentityError(
            f"cannot read {flag} {path} ({what}): {e.strerror or e}",
            "check the path and that the agent's user may read it",
        ) from e
