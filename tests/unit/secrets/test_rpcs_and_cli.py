"""VaultService and `ozwald secrets` over a real in-process gRPC server and a real vault."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from ozwald.agent.v1 import vault_service_pb2_grpc

from ozwald_agent.secrets.rpcs import VaultRpcs
from ozwald_agent.secrets.vault import Vault
from ozwald_sdk.cli.main import main
from ozwald_sdk.errors import ExitCode, SecretNotFoundError, VaultLockedError
from ozwald_sdk.process.request_logging import RequestLoggingInterceptor
from ozwald_sdk.vault_client import VaultClient
from tests.support.short_paths import short_tmpdir

VALUE = b"s3cret-value-4711"


@pytest.fixture
def served() -> Iterator[tuple[str, Vault]]:
    with short_tmpdir() as tmp:
        vault = Vault(tmp / "vault.db", scrypt_n=2**10)
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=4), interceptors=[RequestLoggingInterceptor()]
        )
        vault_service_pb2_grpc.add_VaultServiceServicer_to_server(VaultRpcs(vault), server)
        server.add_insecure_port(f"unix:{tmp / 'v.sock'}")
        server.start()
        yield f"unix://{tmp / 'v.sock'}", vault
        server.stop(0)
        vault.close()


def run_cli(
    target: str,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    *args: str,
    stdin: bytes = b"",
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    code = main(["--agent", target, "secrets", *args])
    out, err = capfd.readouterr()
    return code, out, err


def test_errors_cross_the_wire_as_their_own_classes(served: tuple[str, Vault]) -> None:
    target, _ = served
    with VaultClient(target, timeout=5) as client:
        with pytest.raises(VaultLockedError) as locked:
            client.set("db", {"password": VALUE})
        assert locked.value.exit_code == ExitCode.VAULT_LOCKED
        assert "unlock" in locked.value.remedy
        assert client.unlock(b"pw", create=True) is True
        with pytest.raises(SecretNotFoundError) as missing:
            client.get("db", "password")
        assert missing.value.locker == "default/db"
        assert missing.value.exit_code == ExitCode.SECRET_NOT_FOUND


def test_the_cli_prints_a_value_only_with_reveal_and_audits_every_access(
    served: tuple[str, Vault], monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    target, vault = served
    outputs = []
    for args, stdin in (
        (("unlock", "--create"), b"pw\n"),
        (("set", "db", "password"), VALUE + b"\n"),
        (("get", "db", "password"), b""),
        (("list",), b""),
        (("list", "--json"), b""),
        (("status",), b""),
        (("rotate", "db"), b""),
        (("audit",), b""),
    ):
        code, out, err = run_cli(target, monkeypatch, capfd, *args, stdin=stdin)
        assert code == 0, err
        outputs.append(out + err)
    assert all(VALUE.decode() not in o for o in outputs)
    assert "value hidden" in outputs[2]
    code, out, _ = run_cli(target, monkeypatch, capfd, "get", "db", "password", "--reveal")
    assert (code, out) == (0, VALUE.decode())  # the trailing newline from stdin was dropped
    actions = [r.action for r in vault.audit_records()]
    assert actions == ["unlock", "set", "get", "list", "list", "status", "rotate", "reveal"]
    assert all(r.who.startswith("unix:uid=") for r in vault.audit_records())
    assert {r.names for r in vault.audit_records() if r.action in ("set", "get", "reveal")} == {
        "password"
    }


def test_the_cli_refuses_values_in_argv_and_a_bare_delete(
    served: tuple[str, Vault], monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    target, vault = served
    code, out, err = run_cli(target, monkeypatch, capfd, "set", "db", "password=hunter2")
    assert code == ExitCode.USAGE
    assert "hunter2" not in out + err and "stdin" in err
    code, _, err = run_cli(target, monkeypatch, capfd, "delete", "db")
    assert code == ExitCode.USAGE and "--whole-locker" in err
    assert vault.audit_records() == []  # nothing reached the agent


def test_import_reads_an_env_file_and_errors_never_echo_a_line(
    served: tuple[str, Vault],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    target, vault = served
    run_cli(target, monkeypatch, capfd, "unlock", "--create", stdin=b"pw")
    env = tmp_path / "db.env"
    env.write_text("# creds\nUSER=app\nPASSWORD=p=a ss\n")
    code, out, err = run_cli(target, monkeypatch, capfd, "import", "db", str(env))
    assert code == 0, err
    assert "PASSWORD, USER" in out and "p=a ss" not in out
    assert vault.read_revision("default", "db", 1) == {"PASSWORD": b"p=a ss", "USER": b"app"}
    env.write_text("GOOD=1\nbad line with secret-ish text\n")
    code, out, err = run_cli(target, monkeypatch, capfd, "import", "db", str(env))
    assert code == ExitCode.INVALID_ARGUMENT
    assert "line 2" in err and "secret-ish" not in out + err
