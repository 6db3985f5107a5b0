"""Agent addresses: the forms people write, and clear refusals for the rest."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ozwald_sdk.errors import (
    AgentUnreachableError,
    ConnectionConfigError,
    ExitCode,
    PermissionDeniedError,
)
from ozwald_sdk.paths import default_agent_socket
from ozwald_sdk.target import TlsFiles, resolve_target

NO_ENV: dict[str, str] = {}
TLS_ENV = {
    "OZWALD_TLS_CA": "/etc/ozwald/ca.pem",
    "OZWALD_TLS_CERT": "/etc/ozwald/cli.pem",
    "OZWALD_TLS_KEY": "/etc/ozwald/cli.key",
}


@pytest.mark.parametrize(
    ("address", "path"),
    [
        ("unix:///run/ozwald/agent.sock", "/run/ozwald/agent.sock"),
        ("unix:/run/ozwald/agent.sock", "/run/ozwald/agent.sock"),
        ("/run/ozwald/agent.sock", "/run/ozwald/agent.sock"),
        ("  /run/ozwald/agent.sock\n", "/run/ozwald/agent.sock"),
    ],
)
def test_unix_socket_forms(address: str, path: str) -> None:
    target = resolve_target(address, environ=NO_ENV)
    assert target.socket_path == Path(path)
    assert target.grpc_target == f"unix:{path}"
    assert target.display == f"unix://{path}"
    assert target.tls is None


def test_relative_socket_paths_are_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_target("./a.sock", environ=NO_ENV).socket_path == tmp_path / "a.sock"
    assert resolve_target("unix:b.sock", environ=NO_ENV).socket_path == tmp_path / "b.sock"


def test_default_is_ozwald_agent_env_then_the_default_socket() -> None:
    assert resolve_target(environ=NO_ENV).socket_path == default_agent_socket()
    from_env = resolve_target(environ={"OZWALD_AGENT": "/srv/agent.sock"})
    assert from_env.socket_path == Path("/srv/agent.sock")
    explicit = resolve_target("/x/agent.sock", environ={"OZWALD_AGENT": "/srv/agent.sock"})
    assert explicit.socket_path == Path("/x/agent.sock")


def test_tcp_without_tls_is_refused_saying_why_and_what_to_do() -> None:
    with pytest.raises(ConnectionConfigError) as raised:
        resolve_target("gpu-box-1:7443", environ=NO_ENV)
    error = raised.value
    assert error.exit_code == ExitCode.CONNECTION_CONFIG
    assert "gpu-box-1:7443" in error.message
    assert "mutual TLS" in error.message
    assert all(flag in error.message for flag in ("--tls-ca", "--tls-cert", "--tls-key"))
    assert "--tls-ca" in error.remedy
    assert "unix socket" in error.remedy


def test_partial_tls_names_only_what_is_missing() -> None:
    with pytest.raises(ConnectionConfigError) as raised:
        resolve_target("gpu-box-1:7443", tls_ca=Path("/ca.pem"), environ=NO_ENV)
    assert "--tls-ca" not in raised.value.message
    assert "--tls-cert (OZWALD_TLS_CERT), --tls-key (OZWALD_TLS_KEY) are not set" in (
        raised.value.message
    )


def test_tcp_takes_tls_files_from_flags_over_environment() -> None:
    target = resolve_target("gpu-box-1:7443", tls_key=Path("/mine.key"), environ=TLS_ENV)
    assert target.grpc_target == "gpu-box-1:7443"
    assert target.socket_path is None
    assert target.tls == TlsFiles(
        ca=Path("/etc/ozwald/ca.pem"), cert=Path("/etc/ozwald/cli.pem"), key=Path("/mine.key")
    )


def test_tls_settings_do_not_apply_to_unix_sockets() -> None:
    assert resolve_target("/run/ozwald/agent.sock", environ=TLS_ENV).tls is None


def test_ipv6_needs_brackets() -> None:
    assert resolve_target("[::1]:7443", environ=TLS_ENV).grpc_target == "[::1]:7443"
    with pytest.raises(ConnectionConfigError, match="brackets"):
        resolve_target("::1:7443", environ=TLS_ENV)


@pytest.mark.parametrize(
    "address", ["gpu-box-1", "gpu-box-1:", "gpu-box-1:http", "gpu-box-1:70000", "unix://rel.sock"]
)
def test_unusable_addresses_are_refused_with_the_accepted_forms(address: str) -> None:
    with pytest.raises(ConnectionConfigError) as raised:
        resolve_target(address, environ=TLS_ENV)
    assert address in raised.value.message
    assert "unix://" in raised.value.remedy


def test_socket_path_longer_than_the_kernel_allows_is_refused() -> None:
    with pytest.raises(ConnectionConfigError, match="107"):
        resolve_target("/" + "d" * 120 + "/agent.sock", environ=NO_ENV)


def test_missing_socket_fails_at_once_naming_the_address_and_how_to_start_an_agent(
    tmp_path: Path,
) -> None:
    target = resolve_target(str(tmp_path / "agent.sock"), environ=NO_ENV)
    with pytest.raises(AgentUnreachableError) as raised:
        target.check_socket()
    assert str(tmp_path / "agent.sock") in raised.value.message
    assert "does not exist" in raised.value.message
    assert "ozwald-agent" in raised.value.remedy
    assert "make quickstart" in raised.value.remedy
    assert raised.value.code is None


def test_a_file_that_is_not_a_socket_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "agent.sock").write_text("not a socket")
    target = resolve_target(str(tmp_path / "agent.sock"), environ=NO_ENV)
    with pytest.raises(ConnectionConfigError, match="not a unix socket"):
        target.check_socket()


def test_an_existing_socket_passes_the_check(tmp_path: Path) -> None:
    path = Path(f"/tmp/oz-check-{tmp_path.name[-20:]}.sock")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        try:
            resolve_target(str(path), environ=NO_ENV).check_socket()
        finally:
            path.unlink()


def test_unreadable_tls_file_names_the_file_and_the_flag(tmp_path: Path) -> None:
    files = TlsFiles(ca=tmp_path / "ca.pem", cert=tmp_path / "c.pem", key=tmp_path / "k.pem")
    with pytest.raises(ConnectionConfigError) as raised:
        files.credentials()
    assert str(tmp_path / "ca.pem") in raised.value.message
    assert "--tls-ca" in raised.value.remedy


@contextlib.contextmanager
def _unprivileged() -> Iterator[None]:
    """Root passes every permission check: act as nobody for the block, if root."""
    if os.geteuid() != 0:
        yield
        return
    nobody = pwd.getpwnam("nobody")
    os.setegid(nobody.pw_gid)
    os.seteuid(nobody.pw_uid)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def test_socket_this_user_may_not_open_is_permission_denied() -> None:
    directory = Path(tempfile.mkdtemp(prefix="oz-", dir="/tmp"))
    path = directory / "agent.sock"
    try:
        with socket.socket(socket.AF_UNIX) as listener:
            listener.bind(str(path))
            path.chmod(0)
            directory.chmod(0o700)
            target = resolve_target(str(path), environ=NO_ENV)
            with _unprivileged(), pytest.raises(PermissionDeniedError) as raised:
                target.check_socket()
    finally:
        shutil.rmtree(directory)
    assert raised.value.exit_code == ExitCode.PERMISSION_DENIED
    assert str(path) in raised.value.message
    assert "--socket-group" in raised.value.remedy
