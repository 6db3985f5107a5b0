"""`ozwald-agent --orchestrator ...`: usage errors are refused (exit 2) before anything
is created."""

from __future__ import annotations

from pathlib import Path

import pytest

from ozwald_agent.fleet.address import parse_orchestrator_address
from ozwald_agent.fleet.labels import parse_host_labels
from ozwald_agent.main import EXIT_USAGE, main
from tests.support.certificates import Authority


def _run(tmp_path: Path, *args: str) -> int:
    argv = [
        "--socket",
        str(tmp_path / "agent.sock"),
        "--state-dir",
        str(tmp_path / "state"),
        "--log-format",
        "text",
        *args,
    ]
    try:
        return main(argv)
    except SystemExit as exited:
        return int(exited.code or 0)


def _files(tmp_path: Path, unit: str = "agent") -> list[str]:
    authority = Authority("fleet CA")
    ca = authority.write_pem(tmp_path / "ca.pem")
    cert, key = authority.issue("host-a", server=False, unit=unit).write(tmp_path, "host-a")
    return ["--fleet-ca", str(ca), "--fleet-cert", str(cert), "--fleet-key", str(key)]


def _nothing_created(tmp_path: Path) -> bool:
    return not (tmp_path / "state").exists() and not (tmp_path / "agent.sock").exists()


def test_orchestrator_without_tls_files_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(tmp_path, "--orchestrator", "127.0.0.1:7443") == EXIT_USAGE
    err = capsys.readouterr().err
    assert "--fleet-cert, --fleet-key, --fleet-ca" in err
    assert _nothing_created(tmp_path)


def test_tls_files_or_labels_without_orchestrator_are_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(tmp_path, *_files(tmp_path), "--host-label", "zone=a") == EXIT_USAGE
    assert "only make sense with --orchestrator" in capsys.readouterr().err
    assert _nothing_created(tmp_path)


def test_an_unreadable_file_is_a_usage_error_with_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _files(tmp_path)
    files[-1] = str(tmp_path / "nope.key")

    assert _run(tmp_path, "--orchestrator", "127.0.0.1:7443", *files) == EXIT_USAGE

    err = capsys.readouterr().err
    assert "cannot read --fleet-key" in err and "hint:" in err
    assert _nothing_created(tmp_path)


def test_an_operator_certificate_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _files(tmp_path, unit="operator")
    assert _run(tmp_path, "--orchestrator", "127.0.0.1:7443", *files) == EXIT_USAGE
    assert "not 'agent'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--orchestrator", "nohostport"], "is not an address"),
        (["--orchestrator", "host:99999"], "is not a TCP port"),
        (["--orchestrator", "127.0.0.1:7443", "--host-label", "novalue"], "KEY=VALUE"),
        (["--container-prefix", "bad/prefix"], "--container-prefix"),
    ],
)
def test_malformed_values_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], says: str
) -> None:
    files = _files(tmp_path) if "--orchestrator" in extra else []
    assert _run(tmp_path, *extra, *files) == EXIT_USAGE
    assert says in capsys.readouterr().err
    assert _nothing_created(tmp_path)


def test_addresses_become_grpc_targets() -> None:
    assert parse_orchestrator_address("orchestrator.lan:7443") == "orchestrator.lan:7443"
    assert parse_orchestrator_address(" 10.0.0.5:07443 ") == "10.0.0.5:7443"
    assert parse_orchestrator_address("[fd00::5]:7443") == "[fd00::5]:7443"
    with pytest.raises(ValueError, match="brackets"):
        parse_orchestrator_address("fd00::5:7443")


def test_labels_are_parsed_and_a_contradiction_is_refused() -> None:
    assert parse_host_labels(["zone=a", "gpu=", "zone=a", "note=x=y"]) == {
        "zone": "a",
        "gpu": "",
        "note": "x=y",
    }
    with pytest.raises(ValueError, match="twice"):
        parse_host_labels(["zone=a", "zone=b"])
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_host_labels(["=a"])
