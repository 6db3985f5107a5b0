"""The fleet TLS files: the host id comes from the certificate, and files that can never
join are refused at start with a remedy."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from ozwald_agent.fleet.identity import FleetIdentityError, expiry_problem, load_credentials
from tests.support.certificates import Authority


def _files(tmp_path: Path, *, name: str = "gpu-01", unit: str = "agent") -> tuple[Path, Path, Path]:
    authority = Authority("fleet CA")
    ca = authority.write_pem(tmp_path / "ca.pem")
    cert, key = authority.issue(name, server=False, unit=unit).write(tmp_path, "agent")
    return ca, cert, key


def test_the_host_id_is_the_certificates_common_name(tmp_path: Path) -> None:
    ca, cert, key = _files(tmp_path, name="gpu-01")

    credentials = load_credentials(ca, cert, key)

    assert credentials.host_id == "gpu-01"
    assert credentials.cert == cert.read_bytes()
    assert expiry_problem(credentials) is None


def test_an_operator_certificate_is_refused(tmp_path: Path) -> None:
    ca, cert, key = _files(tmp_path, unit="operator")

    with pytest.raises(FleetIdentityError) as refused:
        load_credentials(ca, cert, key)

    assert "'operator'" in refused.value.message
    assert "--role agent" in refused.value.remedy


def test_a_certificate_without_a_role_is_refused(tmp_path: Path) -> None:
    ca, cert, key = _files(tmp_path, unit="")

    with pytest.raises(FleetIdentityError, match="role '\\(none\\)'"):
        load_credentials(ca, cert, key)


def test_a_key_of_another_certificate_is_refused(tmp_path: Path) -> None:
    ca, cert, _ = _files(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _, _, other_key = _files(other)

    with pytest.raises(FleetIdentityError, match="does not belong"):
        load_credentials(ca, cert, other_key)


def test_an_unreadable_file_names_its_flag(tmp_path: Path) -> None:
    ca, cert, _ = _files(tmp_path)

    with pytest.raises(FleetIdentityError) as refused:
        load_credentials(ca, cert, tmp_path / "missing.key")

    assert "--fleet-key" in refused.value.message
    assert "missing.key" in refused.value.message


def test_a_file_that_is_not_pem_is_refused(tmp_path: Path) -> None:
    ca, cert, key = _files(tmp_path)
    cert.write_text("not a certificate\n")

    with pytest.raises(FleetIdentityError, match=r"--fleet-cert .* holds no PEM certificate"):
        load_credentials(ca, cert, key)


def test_an_expired_certificate_loads_but_says_the_link_will_be_refused(tmp_path: Path) -> None:
    credentials = load_credentials(*_files(tmp_path))
    later = credentials.not_after + datetime.timedelta(seconds=1)

    problem = expiry_problem(credentials, later)

    assert problem is not None
    assert "gpu-01" in problem and "expired" in problem and "ozwald ca issue" in problem
