"""The fleet CA: what `ozwald ca init` and `ozwald ca issue` write, and what they refuse."""

from __future__ import annotations

import datetime
import ipaddress
import json
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ozwald_sdk import ca
from ozwald_sdk.cli.main import main
from ozwald_sdk.errors import ExitCode


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def signed_by(cert: x509.Certificate, authority: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(authority)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def test_init_writes_a_ten_year_p256_ca_with_a_private_key(tmp_path: Path) -> None:
    directory = tmp_path / "fleet-ca"

    files = ca.init_ca(directory)

    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    cert = load(files.cert)
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca and constraints.path_length == 0
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime == datetime.timedelta(days=3650)
    assert signed_by(cert, cert)


def test_init_refuses_to_replace_a_ca_unless_forced(tmp_path: Path) -> None:
    first = ca.init_ca(tmp_path)
    before = first.cert.read_bytes()

    with pytest.raises(ca.CertificateAuthorityError) as raised:
        ca.init_ca(tmp_path)

    assert "already exists" in raised.value.message
    assert "--force" in raised.value.remedy
    assert first.cert.read_bytes() == before
    ca.init_ca(tmp_path, force=True)
    assert first.cert.read_bytes() != before


@pytest.mark.parametrize("role", ["agent", "operator"])
def test_client_roles_get_client_auth_and_their_role_in_the_ou(tmp_path: Path, role: str) -> None:
    authority = ca.init_ca(tmp_path / "ca")

    issued = ca.issue(tmp_path / "ca", role, "gpu-01", out=tmp_path / "out")  # type: ignore[arg-type]

    cert = load(issued.cert)
    assert ca.identity_of(issued.cert.read_bytes()) == ca.CertificateIdentity(role, "gpu-01")
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "gpu-01"
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert signed_by(cert, load(authority.cert))
    assert stat.S_IMODE(issued.key.stat().st_mode) == 0o600
    assert issued.cert.parent == tmp_path / "out"
    assert issued.not_after - issued.not_before <= datetime.timedelta(days=365, minutes=5)


def test_the_orchestrator_gets_server_auth_and_the_names_clients_dial(tmp_path: Path) -> None:
    ca.init_ca(tmp_path)

    default = ca.issue(tmp_path, "orchestrator", "orch")
    named = ca.issue(tmp_path, "orchestrator", "orch2", sans=["orch.example.com", "10.0.0.5"])

    usage = load(default.cert).extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    sans = load(default.cert).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert sans.value.get_values_for_type(x509.DNSName) == ["localhost"]
    assert set(sans.value.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    named_sans = load(named.cert).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert named_sans.value.get_values_for_type(x509.DNSName) == ["orch.example.com"]
    assert named_sans.value.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("10.0.0.5")
    ]


def test_not_after_may_lie_in_the_past_to_make_an_expired_certificate(tmp_path: Path) -> None:
    ca.init_ca(tmp_path)
    yesterday = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)

    issued = ca.issue(tmp_path, "agent", "old", not_after=yesterday)

    assert issued.not_after == yesterday.replace(microsecond=0)
    assert issued.not_before < issued.not_after


def test_a_certificate_never_outlives_its_ca(tmp_path: Path) -> None:
    authority = ca.init_ca(tmp_path, days=30)

    issued = ca.issue(tmp_path, "agent", "h1", days=365)

    assert issued.not_after == authority.not_after


@pytest.mark.parametrize(
    ("name", "sans", "days", "expected"),
    [
        ("bad name", (), 30, "a name must be"),
        ("../etc", (), 30, "a name must be"),
        ("h1", ("not a name!",), 30, "neither an IP address nor a DNS name"),
        ("h1", (), 0, "at least one day"),
    ],
)
def test_bad_requests_are_refused_before_anything_is_written(
    tmp_path: Path, name: str, sans: tuple[str, ...], days: int, expected: str
) -> None:
    ca.init_ca(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())

    with pytest.raises(ca.CertificateAuthorityError) as raised:
        ca.issue(tmp_path, "agent", name, sans=sans, days=days)

    assert expected in raised.value.message
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_issue_without_a_ca_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ca.CertificateAuthorityError) as raised:
        ca.issue(tmp_path / "nowhere", "agent", "h1")

    assert "no CA in" in raised.value.message
    assert "ozwald ca init" in raised.value.remedy


def test_issue_refuses_to_overwrite_a_certificate_unless_forced(tmp_path: Path) -> None:
    ca.init_ca(tmp_path)
    first = ca.issue(tmp_path, "agent", "h1")

    with pytest.raises(ca.CertificateAuthorityError):
        ca.issue(tmp_path, "agent", "h1")
    renewed = ca.issue(tmp_path, "agent", "h1", force=True)

    assert renewed.cert == first.cert


def test_the_cli_writes_json_and_exits_1_when_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = str(tmp_path / "ca")
    assert main(["ca", "init", "--dir", directory, "--days", "100"]) == ExitCode.OK
    capsys.readouterr()

    code = main(
        ["ca", "issue", "--dir", directory, "--role", "agent", "h1", "--days", "7", "--json"]
    )

    assert code == ExitCode.OK
    document = json.loads(capsys.readouterr().out)
    assert document["role"] == "agent"
    assert document["name"] == "h1"
    assert Path(document["key"]).exists()
    assert document["not_after"].endswith("Z")
    assert main(["ca", "init", "--dir", directory]) == ExitCode.FAILURE
    err = capsys.readouterr().err
    assert "error: a CA already exists" in err
    assert "hint:" in err


def test_the_cli_takes_an_exact_end_for_expired_test_certificates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = str(tmp_path)
    main(["ca", "init", "--dir", directory])
    capsys.readouterr()

    code = main(
        ["ca", "issue", "--dir", directory, "--role", "agent", "h1", "--not-after", "2020-01-01"]
    )

    assert code == ExitCode.OK
    assert "ALREADY EXPIRED" in capsys.readouterr().out
    cert = load(tmp_path / "h1.crt")
    assert cert.not_valid_after_utc == datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
