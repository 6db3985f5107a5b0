"""`ozwald audit` and `ozwald audit verify` (and AuditClient under them) against the
orchestrator's real AuditService and AuditLog on a real gRPC server: what people read,
the JSON lines an export holds, the exit codes of a broken chain, and who the log says
made a call."""

from __future__ import annotations

import datetime
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from ozwald.orchestrator.v1 import audit_service_pb2 as pb
from ozwald.orchestrator.v1 import audit_service_pb2_grpc

from ozwald_orchestrator.audit import AuditLog
from ozwald_orchestrator.audit import service as audit_service
from ozwald_sdk import ca
from ozwald_sdk.audit_client import AuditClient, record_from_json, record_to_json
from ozwald_sdk.cli.main import main
from ozwald_sdk.errors import ExitCode, PermissionDeniedError
from ozwald_sdk.metadata import CLIENT_UID_KEY
from ozwald_sdk.orchestrator_client import FleetClient
from ozwald_sdk.target import resolve_orchestrator_target
from ozwald_sdk.testing import ServerTls
from tests.unit.cli.audit_server import WHO_AM_I, serve_audit


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "orchestrator.db"


@pytest.fixture
def log(db_path: Path) -> Iterator[AuditLog]:
    opened = AuditLog(db_path)
    yield opened
    opened.close()


@pytest.fixture
def address(log: AuditLog) -> Iterator[str]:
    with serve_audit(log) as address:
        yield address


class Runner:
    def __init__(self, capsys: pytest.CaptureFixture[str], address: str) -> None:
        self.capsys, self.address = capsys, address

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        code = main(["--orchestrator", self.address, *argv])
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture
def ozwald(capsys: pytest.CaptureFixture[str], address: str) -> Runner:
    return Runner(capsys, address)


def _history(log: AuditLog) -> None:
    """An apply by alice, placements by the orchestrator, an agent's report, a delete."""
    log.record(
        "operator:alice",
        "deployment-created",
        deployment="embed",
        after={"name": "embed", "replicas": 2, "service": "embed"},
    )
    log.record(
        "orchestrator",
        "instance-placed",
        deployment="embed",
        instance="embed-0",
        host_id="h1",
        before={"state": "PENDING", "host_id": ""},
        after={"state": "ASSIGNED", "host_id": "h1"},
    )
    log.record(
        "agent:h1",
        "instance-state-changed",
        deployment="embed",
        instance="embed-0",
        host_id="h1",
        before={"state": "ASSIGNED"},
        after={"state": "RUNNING"},
    )
    log.record(
        "operator:bob",
        "deployment-updated",
        deployment="embed",
        before={"name": "embed", "replicas": 2, "service": "embed"},
        after={"name": "embed", "replicas": 3, "service": "embed"},
    )
    log.record(
        "local:uid=0",
        "deployment-deleted",
        deployment="chat",
        before={"name": "chat", "replicas": 1},
    )


def _tamper(db_path: Path, statement: str) -> None:
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("DROP TRIGGER IF EXISTS audit_records_no_update")
    db.execute("DROP TRIGGER IF EXISTS audit_records_no_delete")
    db.execute(statement)
    db.close()


# listing ----------------------------------------------------------------------------


def test_audit_lists_who_did_what_with_the_change(ozwald: Runner, log: AuditLog) -> None:
    _history(log)
    code, out, err = ozwald("audit")
    assert code == ExitCode.OK, err
    lines = out.splitlines()
    assert len(lines) == 5
    assert lines[0].startswith("#1 ")
    assert lines[0].endswith("operator:alice deployment-created embed: created")
    assert lines[1].endswith(
        'orchestrator instance-placed embed/embed-0 @h1: host_id "" -> h1, '
        "state PENDING -> ASSIGNED"
    )
    assert lines[2].endswith(
        "agent:h1 instance-state-changed embed/embed-0 @h1: state ASSIGNED -> RUNNING"
    )
    assert lines[3].endswith("operator:bob deployment-updated embed: replicas 2 -> 3")
    assert lines[4].endswith("local:uid=0 deployment-deleted chat: deleted")


def test_audit_filters_reach_the_orchestrator(ozwald: Runner, log: AuditLog) -> None:
    _history(log)

    def sequences(*argv: str) -> list[str]:
        code, out, err = ozwald("audit", *argv)
        assert code == ExitCode.OK, err
        return [line.split()[0] for line in out.splitlines()]

    assert sequences("--deployment", "embed") == ["#1", "#2", "#3", "#4"]
    assert sequences("--host", "h1") == ["#2", "#3"]
    assert sequences("--actor", "operator:") == ["#1", "#4"]
    assert sequences("--actor", "agent:h1") == ["#3"]
    assert sequences("--kind", "deployment-deleted") == ["#5"]
    assert sequences("--after", "3") == ["#4", "#5"]
    assert sequences("--limit", "2") == ["#1", "#2"]
    assert sequences("--since", "1h") == ["#1", "#2", "#3", "#4", "#5"]
    assert sequences("--until", "1h") == []
    tomorrow = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)).date()
    assert sequences("--since", tomorrow.isoformat()) == []


def test_no_match_says_so_on_stderr(ozwald: Runner, log: AuditLog) -> None:
    code, out, err = ozwald("audit", "--deployment", "nothing")
    assert (code, out) == (ExitCode.OK, "")
    assert "no audit records match" in err


def test_a_bad_since_is_a_usage_error(ozwald: Runner, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        ozwald("audit", "--since", "last tuesday")
    assert raised.value.code == ExitCode.USAGE
    assert "age like 15m" in capsys.readouterr().err


def test_json_export_is_one_record_per_line_and_verifies_offline(
    ozwald: Runner, log: AuditLog, tmp_path: Path
) -> None:
    _history(log)
    code, out, err = ozwald("audit", "--json")
    assert code == ExitCode.OK, err
    lines = out.splitlines()
    assert len(lines) == 5
    first = json.loads(lines[0])
    assert first["actor"] == "operator:alice"
    assert first["kind"] == "deployment-created"
    assert json.loads(first["after_json"]) == {"name": "embed", "replicas": 2, "service": "embed"}
    assert first["prev_hash"] == "0" * 64
    export = tmp_path / "audit.jsonl"
    export.write_text(out)

    code, out, err = ozwald("audit", "verify", "--file", str(export))
    assert code == ExitCode.OK, err
    assert "intact: 5 records checked" in out

    # Change one word in the exported copy: the export no longer verifies.
    lines[2] = lines[2].replace("RUNNING", "FAILED")
    export.write_text("\n".join(lines) + "\n")
    code, out, err = ozwald("audit", "verify", "--file", str(export))
    assert code == ExitCode.AUDIT_TAMPERED
    assert "is broken at record 3" in err

    # An export without its first records is refused as a whole log...
    export.write_text("\n".join(ozwald("audit", "--json", "--after", "2")[1].splitlines()))
    code, _, err = ozwald("audit", "verify", "--file", str(export))
    assert code == ExitCode.AUDIT_TAMPERED and "records 1 to 2 are missing" in err
    # ...and checks out as a part of one.
    code, out, err = ozwald("audit", "verify", "--file", str(export), "--partial")
    assert code == ExitCode.OK, err


def test_a_file_that_is_not_an_export_is_refused(ozwald: Runner, tmp_path: Path) -> None:
    export = tmp_path / "notes.txt"
    export.write_text("hello\n")
    code, _, err = ozwald("audit", "verify", "--file", str(export))
    assert code == ExitCode.FAILURE
    assert "line 1: not an audit record" in err


def test_the_client_pages_through_large_logs(address: str, log: AuditLog) -> None:
    for n in range(25):
        log.record("orchestrator", "host-joined", host_id=f"h{n}")
    with AuditClient(address, timeout=5) as client:
        records = list(client.records(page_size=4))
        assert [r.sequence for r in records] == list(range(1, 26))
        assert [r.host_id for r in client.records(page_size=4, limit=6, after_sequence=10)] == [
            f"h{n}" for n in range(10, 16)
        ]
        assert [record_from_json(record_to_json(r)) for r in records] == records


# verify -----------------------------------------------------------------------------


def test_verify_reports_an_intact_log_and_its_head(ozwald: Runner, log: AuditLog) -> None:
    _history(log)
    code, out, err = ozwald("audit", "verify")
    assert code == ExitCode.OK, err
    assert out.startswith("the audit log intact: 5 records checked, head #5 ")
    anchor = out.splitlines()[-1].split("--anchor ")[1]
    code, out, err = ozwald("audit", "verify", "--anchor", anchor)
    assert code == ExitCode.OK, err


def test_verify_names_the_first_bad_record_with_exit_20(
    ozwald: Runner, log: AuditLog, db_path: Path
) -> None:
    _history(log)
    assert log.flush(timeout=10)
    _tamper(db_path, "UPDATE audit_records SET actor = 'operator:mallory' WHERE sequence = 4")

    code, out, err = ozwald("audit", "verify")
    assert code == ExitCode.AUDIT_TAMPERED
    assert int(code) == 20
    assert out == ""
    assert "error: the audit log is broken at record 4: record 4: the stored hash" in err
    assert "hint: records before 4 check out" in err
    assert "`ozwald audit --after 3 --limit 1` shows the record" in err

    code, out, err = ozwald("audit", "verify", "--json")
    assert code == ExitCode.AUDIT_TAMPERED
    document = json.loads(out)
    assert document["ok"] is False
    assert document["first_bad_sequence"] == "4"
    assert document["break_kind"] == "AUDIT_BREAK_HASH_MISMATCH"


def test_verify_names_a_deleted_record(ozwald: Runner, log: AuditLog, db_path: Path) -> None:
    _history(log)
    assert log.flush(timeout=10)
    _tamper(db_path, "DELETE FROM audit_records WHERE sequence = 2")
    code, _, err = ozwald("audit", "verify")
    assert code == ExitCode.AUDIT_TAMPERED
    assert "record 2 is missing" in err


def test_verify_against_an_anchor_the_log_no_longer_reaches(ozwald: Runner, log: AuditLog) -> None:
    _history(log)
    code, _, err = ozwald("audit", "verify", "--anchor", f"9:{'ab' * 32}")
    assert code == ExitCode.AUDIT_TAMPERED
    assert "cut off the end" in err
    code, _, err = ozwald("audit", "verify", "--anchor", f"5:{'ab' * 32}")
    assert code == ExitCode.AUDIT_TAMPERED
    assert "was rewritten" in err


def test_a_malformed_anchor_is_a_usage_error(
    ozwald: Runner, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as raised:
        ozwald("audit", "verify", "--anchor", "5:nothex")
    assert raised.value.code == ExitCode.USAGE
    assert "SEQUENCE:HASH" in capsys.readouterr().err


def test_an_unreachable_orchestrator_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--orchestrator", "unix:///nonexistent/orchestrator.sock", "audit", "verify"])
    assert code == ExitCode.AGENT_UNREACHABLE
    assert "/nonexistent/orchestrator.sock" in capsys.readouterr().err


# who --------------------------------------------------------------------------------


def test_local_callers_are_named_by_the_uid_they_send(address: str) -> None:
    with grpc.insecure_channel(address) as channel:
        who: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(WHO_AM_I)
        assert who(b"", timeout=5) == b"local"
        assert who(b"", timeout=5, metadata=((CLIENT_UID_KEY, "1000"),)) == b"local:uid=1000"
        assert who(b"", timeout=5, metadata=((CLIENT_UID_KEY, "root"),)) == b"local"


def test_the_clients_send_this_processs_uid(address: str, log: AuditLog) -> None:
    with AuditClient(address, timeout=5) as audit, FleetClient(address, timeout=5) as fleet:
        assert (CLIENT_UID_KEY, str(os.getuid())) in audit._metadata
        assert (CLIENT_UID_KEY, str(os.getuid())) in fleet._metadata


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    directory = tmp_path / "ca"
    ca.init_ca(directory)
    return directory


def _tls(pki: Path) -> ServerTls:
    server = ca.issue(pki, "orchestrator", "orch")
    return ServerTls(
        cert=server.cert.read_bytes(),
        key=server.key.read_bytes(),
        client_ca=server.ca_cert.read_bytes(),
    )


def test_over_tls_operators_read_and_are_named_by_their_certificate(
    pki: Path, log: AuditLog
) -> None:
    alice = ca.issue(pki, "operator", "alice")
    log.record("operator:alice", "deployment-created", deployment="embed")
    with serve_audit(log, tls=_tls(pki)) as address:
        target = resolve_orchestrator_target(
            address, tls_ca=alice.ca_cert, tls_cert=alice.cert, tls_key=alice.key, environ={}
        )
        with AuditClient(target, timeout=5) as client:
            assert [r.actor for r in client.records()] == ["operator:alice"]
            assert client.verify().ok
        credentials = grpc.ssl_channel_credentials(
            root_certificates=alice.ca_cert.read_bytes(),
            private_key=alice.key.read_bytes(),
            certificate_chain=alice.cert.read_bytes(),
        )
        with grpc.secure_channel(address, credentials) as channel:
            who: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(WHO_AM_I)
            assert who(b"", timeout=5) == b"operator:alice"


def test_over_tls_agents_may_not_read_the_audit_log(pki: Path, log: AuditLog) -> None:
    agent = ca.issue(pki, "agent", "h1")
    with serve_audit(log, tls=_tls(pki)) as address:
        target = resolve_orchestrator_target(
            address, tls_ca=agent.ca_cert, tls_cert=agent.cert, tls_key=agent.key, environ={}
        )
        with AuditClient(target, timeout=5) as client, pytest.raises(PermissionDeniedError) as e:
            list(client.records())
        assert "for operators" in e.value.message
        assert "certificate CN='h1' (role agent)" in e.value.message


def test_an_impossible_time_is_refused_naming_the_field(address: str) -> None:
    request = pb.ListAuditRecordsRequest(since=Timestamp(seconds=10**13))
    with grpc.insecure_channel(address) as channel:
        stub = audit_service_pb2_grpc.AuditServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.ListAuditRecords(request, timeout=5)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "since" in (raised.value.details() or "")


def test_a_listing_does_not_hang_on_a_stuck_writer(
    address: str, log: AuditLog, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the database's write lock held elsewhere, the newest record cannot be
    committed; a listing answers with what is committed instead of waiting forever."""
    monkeypatch.setattr(audit_service, "FLUSH_WAIT_S", 0.2)
    log.record("operator:alice", "deployment-created", deployment="embed")
    assert log.flush(timeout=10)
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        log.record("operator:alice", "deployment-deleted", deployment="embed")
        with AuditClient(address, timeout=5) as client:
            assert [r.kind for r in client.records()] == ["deployment-created"]
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    assert log.flush(timeout=10)
