"""Who is calling: the role and name in the peer's client certificate.

`ozwald ca issue` writes the role (`agent` or `operator`) into the certificate's
organizational unit (OU) and the host id or operator name into its common name (CN).
Calls over the unix socket carry no certificate; file permissions guard them instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

ROLE_AGENT = "agent"
ROLE_OPERATOR = "operator"


@dataclass(frozen=True)
class PeerIdentity:
    """The certificate's common name and its organizational units (roles)."""

    common_name: str
    roles: frozenset[str]

    def describe(self) -> str:
        roles = ", ".join(sorted(self.roles)) or "none"
        return f"certificate CN={self.common_name!r} (role {roles})"


def peer_identity(auth_context: Mapping[str, Iterable[bytes]]) -> PeerIdentity | None:
    """The identity of a mutual-TLS peer, or None when the call came without a certificate."""
    pem = next(iter(auth_context.get("x509_pem_cert", ())), None)
    if not pem:
        return None
    certificate = x509.load_pem_x509_certificate(pem)
    subject = certificate.subject
    names = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    units = subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    return PeerIdentity(
        common_name=_text(names[0].value) if names else "",
        roles=frozenset(_text(unit.value) for unit in units),
    )


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
