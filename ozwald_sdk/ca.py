"""The fleet's certificate authority: `ozwald ca init` and `ozwald ca issue`.

Everything in a fleet that talks over TCP does so with mutual TLS, and every party
trusts one CA. The CA directory holds `ca.key` (mode 0600, EC P-256) and `ca.crt`.
Certificates it issues say who holds them in the subject:

- CN: the holder's name. For an agent this is its host id: the orchestrator takes
  the host id from the certificate, never from what the agent claims.
- OU: the role, one of `agent` (clientAuth; dials the orchestrator), `operator`
  (clientAuth; uses FleetService over TCP) and `orchestrator` (serverAuth, with the
  DNS names and IP addresses agents and operators dial as subjectAltNames).

docs/certificates.md says how to lay the files out and rotate them.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, get_args

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ozwald_sdk.errors import ExitCode, OzwaldError

Role = Literal["agent", "operator", "orchestrator"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)

CA_KEY_NAME: Final = "ca.key"
CA_CERT_NAME: Final = "ca.crt"
DEFAULT_CA_NAME: Final = "Ozwald fleet CA"
DEFAULT_CA_DAYS: Final = 3650
DEFAULT_LEAF_DAYS: Final = 365
ORGANIZATION: Final = "Ozwald"
# Clocks of hosts in a fleet differ a little; a certificate valid from "now" on one host
# would be refused for a few seconds on a host whose clock runs behind.
CLOCK_SKEW: Final = datetime.timedelta(minutes=5)
# Names become file names and, for agents, host ids in every table and log line.
NAME_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
NAME_RULE: Final = (
    "letters, digits, '.', '_' and '-', starting with a letter or digit, at most 63 characters"
)
_DEFAULT_SERVER_SANS: Final = ("localhost", "127.0.0.1", "::1")


class CertificateAuthorityError(OzwaldError):
    """The CA or a certificate cannot be made: files in the way, an unreadable CA, a bad
    name or validity. Nothing was written."""

    exit_code = ExitCode.FAILURE


@dataclass(frozen=True)
class CaFiles:
    """Where a CA's key and certificate are."""

    key: Path
    cert: Path
    not_after: datetime.datetime

    @classmethod
    def in_directory(cls, directory: Path) -> tuple[Path, Path]:
        return directory / CA_KEY_NAME, directory / CA_CERT_NAME


@dataclass(frozen=True)
class IssuedFiles:
    """A certificate `issue` wrote, its key, and the CA certificate to trust with it."""

    role: Role
    name: str
    cert: Path
    key: Path
    ca_cert: Path
    not_before: datetime.datetime
    not_after: datetime.datetime
    sans: tuple[str, ...]


@dataclass(frozen=True)
class CertificateIdentity:
    """Who a certificate says its holder is: role (OU) and name (CN)."""

    role: str
    name: str


def init_ca(
    directory: Path,
    *,
    name: str = DEFAULT_CA_NAME,
    days: int = DEFAULT_CA_DAYS,
    force: bool = False,
    now: datetime.datetime | None = None,
) -> CaFiles:
    """Create a CA in `directory` (made 0700 when missing): ca.key (0600) and ca.crt.

    Refuses when either file exists, unless `force`: replacing a CA makes every
    certificate it issued worthless, so it is never done by accident.
    """
    if days < 1:
        raise CertificateAuthorityError(
            f"a CA must be valid for at least one day, not {days}",
            remedy="give --days a positive number (default 3650, ten years)",
        )
    key_path, cert_path = CaFiles.in_directory(directory)
    existing = [p for p in (key_path, cert_path) if p.exists()]
    if existing and not force:
        raise CertificateAuthorityError(
            f"a CA already exists in {directory} ({', '.join(p.name for p in existing)}); "
            "replacing it would make every certificate it issued worthless",
            remedy="use that CA (`ozwald ca issue --dir ...`), choose another --dir, or pass "
            "--force to replace it and then issue every certificate again",
        )
    start = (now or datetime.datetime.now(datetime.UTC)) - CLOCK_SKEW
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    _make_directory(directory)
    _write(key_path, _key_pem(key), private=True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return CaFiles(key=key_path, cert=cert_path, not_after=cert.not_valid_after_utc)


def issue(
    ca_directory: Path,
    role: Role,
    name: str,
    *,
    sans: Sequence[str] = (),
    days: int = DEFAULT_LEAF_DAYS,
    not_after: datetime.datetime | None = None,
    out: Path | None = None,
    force: bool = False,
    now: datetime.datetime | None = None,
) -> IssuedFiles:
    """Issue a certificate for `name` in `role`, signed by the CA in `ca_directory`.

    Writes NAME.crt and NAME.key (0600) into `out` (default: the CA directory). Valid for
    `days`, or until `not_after` when given, which may lie in the past (to check that an
    expired certificate is refused); never beyond the CA's own end. `sans` (DNS names or
    IP addresses) go into the subjectAltName: required for the orchestrator's server
    certificate (default localhost, 127.0.0.1 and ::1), allowed for the others.
    """
    if role not in ROLES:
        raise CertificateAuthorityError(
            f"no role '{role}': a certificate is for one of {', '.join(ROLES)}",
            remedy="pass --role agent (a host), operator (a person or tool) or orchestrator",
        )
    if not NAME_PATTERN.match(name):
        raise CertificateAuthorityError(
            f"cannot issue a certificate for {name!r}: a name must be {NAME_RULE}",
            remedy="for an agent, give its host id (e.g. gpu-01); for an operator, a user name",
        )
    ca_key, ca_cert = load_ca(ca_directory)
    target = out or ca_directory
    cert_path, key_path = target / f"{name}.crt", target / f"{name}.key"
    existing = [p for p in (cert_path, key_path) if p.exists()]
    if existing and not force:
        raise CertificateAuthorityError(
            f"{', '.join(str(p) for p in existing)} already exist"
            + ("s" if len(existing) == 1 else ""),
            remedy="pass --force to replace them (to renew a certificate), or --out another "
            "directory",
        )
    moment = now or datetime.datetime.now(datetime.UTC)
    not_before, end = _validity(moment, days, not_after, ca_cert)
    names = tuple(sans) or (_DEFAULT_SERVER_SANS if role == "orchestrator" else ())
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    usage = (
        ExtendedKeyUsageOID.SERVER_AUTH
        if role == "orchestrator"
        else ExtendedKeyUsageOID.CLIENT_AUTH
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
                    x509.NameAttribute(NameOID.COMMON_NAME, name),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(san) for san in names]), critical=False
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    _make_directory(target)
    _write(key_path, _key_pem(key), private=True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return IssuedFiles(
        role=role,
        name=name,
        cert=cert_path,
        key=key_path,
        ca_cert=ca_directory / CA_CERT_NAME,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sans=names,
    )


def load_ca(directory: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The CA's key and certificate from `directory`, checked to belong together."""
    key_path, cert_path = CaFiles.in_directory(directory)
    try:
        key_pem, cert_pem = key_path.read_bytes(), cert_path.read_bytes()
    except FileNotFoundError as e:
        raise CertificateAuthorityError(
            f"no CA in {directory}: {e.filename} does not exist",
            remedy=f"create one with `ozwald ca init --dir {directory}`, or point --dir at it",
        ) from e
    except OSError as e:
        raise CertificateAuthorityError(
            f"cannot read the CA in {directory}: {e.strerror or e}",
            remedy="run as the user who owns the CA directory",
        ) from e
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
        cert = x509.load_pem_x509_certificate(cert_pem)
    except (ValueError, TypeError) as e:
        raise CertificateAuthorityError(
            f"the CA in {directory} cannot be read as PEM: {e}",
            remedy="restore ca.key and ca.crt as `ozwald ca init` wrote them",
        ) from e
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise CertificateAuthorityError(
            f"{key_path} is not the key of {cert_path}",
            remedy="restore the pair `ozwald ca init` wrote together",
        )
    return key, cert


def identity_of(cert_pem: bytes) -> CertificateIdentity:
    """Role (OU) and name (CN) of a PEM certificate, as `issue` wrote them; empty strings
    where the subject has none."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    return identity_of_certificate(cert)


def identity_of_certificate(cert: x509.Certificate) -> CertificateIdentity:
    """Role (OU) and name (CN) of a certificate."""

    def first(oid: x509.ObjectIdentifier) -> str:
        values = cert.subject.get_attributes_for_oid(oid)
        value = values[0].value if values else ""
        return value.decode() if isinstance(value, bytes) else value

    return CertificateIdentity(
        role=first(NameOID.ORGANIZATIONAL_UNIT_NAME), name=first(NameOID.COMMON_NAME)
    )


def _validity(
    moment: datetime.datetime,
    days: int,
    not_after: datetime.datetime | None,
    ca_cert: x509.Certificate,
) -> tuple[datetime.datetime, datetime.datetime]:
    if not_after is None:
        if days < 1:
            raise CertificateAuthorityError(
                f"a certificate must be valid for at least one day, not {days}",
                remedy="give --days a positive number (or --not-after for an exact end)",
            )
        end = moment + datetime.timedelta(days=days)
    else:
        end = not_after if not_after.tzinfo else not_after.replace(tzinfo=datetime.UTC)
    # A certificate outliving its CA would be refused anyway once the CA expires.
    end = min(end, ca_cert.not_valid_after_utc)
    # An end in the past makes an expired certificate (to test that it is refused): its
    # validity then lies before the CA's own start, which verifiers do not compare.
    start = min(moment - CLOCK_SKEW, end - datetime.timedelta(hours=1))
    return start, end


def _general_name(text: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(text))
    except ValueError:
        pass
    if not re.fullmatch(r"(?=.{1,253}$)(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?", text):
        raise CertificateAuthorityError(
            f"subjectAltName {text!r} is neither an IP address nor a DNS name",
            remedy="give --san a host name (orch.example.com) or an address (10.0.0.5)",
        )
    return x509.DNSName(text)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _make_directory(directory: Path) -> None:
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise CertificateAuthorityError(
            f"cannot create {directory}: {e.strerror or e}",
            remedy="choose a directory this user may write",
        ) from e


def _write(path: Path, data: bytes, *, private: bool) -> None:
    """Write `data` to `path` through a temporary file and a rename, so a reader never sees
    half a key; private files are 0600 from their first byte."""
    temporary = path.with_name(f".{path.name}.tmp")
    mode = 0o600 if private else 0o644
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(descriptor, "wb") as file:
            os.fchmod(file.fileno(), mode)
            file.write(data)
        os.replace(temporary, path)
    except OSError as e:
        temporary.unlink(missing_ok=True)
        raise CertificateAuthorityError(
            f"cannot write {path}: {e.strerror or e}",
            remedy="choose a directory this user may write",
        ) from e
