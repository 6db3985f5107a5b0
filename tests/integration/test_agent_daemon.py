"""The real ozwald-agent process: listeners, locks, shutdown, health, reflection, logs."""

from __future__ import annotations

import json
import signal
import socket
import stat
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from ozwald.agent.v1 import agent_service_pb2, agent_service_pb2_grpc

from ozwald_sdk.metadata import CORRELATION_ID_KEY
from tests.integration.agent_process import RunningAgent, run_agent_command, start_agent
from tests.support.certificates import Authority, Issued


def _stub(target: str) -> tuple[grpc.Channel, agent_service_pb2_grpc.AgentServiceStub]:
    channel = grpc.insecure_channel(target)
    return channel, agent_service_pb2_grpc.AgentServiceStub(channel)


def test_socket_is_group_accessible_only(agent: RunningAgent) -> None:
    mode = agent.socket.stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o660


def test_sigterm_removes_socket_and_exits_zero(workdir: Path) -> None:
    running = start_agent(workdir)
    assert running.socket.exists()
    assert running.terminate() == 0
    assert not running.socket.exists()
    assert "agent stopped" in running.logs()


def test_second_agent_on_same_socket_is_refused(agent: RunningAgent, workdir: Path) -> None:
    other_state = workdir / "other-state"
    second = run_agent_command("--socket", str(agent.socket), "--state-dir", str(other_state))
    assert second.returncode == 3
    assert f"already uses the socket {agent.socket}" in second.stderr
    assert f"pid {agent.process.pid}" in second.stderr
    assert "hint:" in second.stderr
    assert not other_state.exists(), "a refused agent must leave no state directory behind"
    # The first agent still owns and serves its socket.
    channel, stub = _stub(agent.target)
    with channel:
        assert stub.GetHostProfile(agent_service_pb2.GetHostProfileRequest(), timeout=10).profile


def test_unknown_socket_group_is_refused_before_anything_is_created(workdir: Path) -> None:
    result = run_agent_command(
        "--socket", str(workdir / "s" / "a.sock"), "--socket-group", "no-such-group-oz"
    )
    assert result.returncode == 2
    assert "no such group" in result.stderr
    assert not (workdir / "s").exists()


def test_overlong_socket_path_is_refused_clearly(workdir: Path) -> None:
    result = run_agent_command("--socket", str(workdir / ("x" * 120) / "a.sock"))
    assert result.returncode == 2
    assert "longer than the 107 bytes" in result.stderr


def test_second_agent_on_same_state_dir_is_refused(agent: RunningAgent, workdir: Path) -> None:
    second = run_agent_command(
        "--socket", str(workdir / "b.sock"), "--state-dir", str(agent.state_dir)
    )
    assert second.returncode == 3
    assert "already uses the state directory" in second.stderr


def test_killed_agent_leaves_a_socket_the_next_agent_reclaims(workdir: Path) -> None:
    first = start_agent(workdir)
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(10)
    assert first.socket.exists(), "SIGKILL cannot clean up; the stale socket must stay"
    second = start_agent(workdir)
    assert second.terminate() == 0


def test_a_regular_file_at_the_socket_path_is_never_deleted(workdir: Path) -> None:
    precious = workdir / "agent.sock"
    precious.write_text("not a socket")
    result = run_agent_command("--socket", str(precious), "--state-dir", str(workdir / "s"))
    assert result.returncode == 3
    assert "is not a socket" in result.stderr
    assert precious.read_text() == "not a socket"


def test_reflection_lists_the_agent_service(agent: RunningAgent) -> None:
    with grpc.insecure_channel(agent.target) as channel:
        names = set(ProtoReflectionDescriptorDatabase(channel).get_services())
    assert "ozwald.agent.v1.AgentService" in names
    assert "grpc.health.v1.Health" in names


def test_log_lines_carry_the_callers_correlation_id(agent: RunningAgent) -> None:
    channel, stub = _stub(agent.target)
    with channel:
        stub.GetHostProfile(
            agent_service_pb2.GetHostProfileRequest(),
            timeout=10,
            metadata=((CORRELATION_ID_KEY, "test-cid-42"),),
        )
    agent.terminate()
    entries = [json.loads(line) for line in agent.logs().splitlines() if line.startswith("{")]
    finished = [e for e in entries if e.get("rpc_method", "").endswith("/GetHostProfile")]
    assert finished, agent.logs()
    assert finished[0]["correlation_id"] == "test-cid-42"
    assert finished[0]["level"] == "INFO"


def test_watch_sends_profiles_and_ends_cleanly_on_sigterm(agent: RunningAgent) -> None:
    channel, stub = _stub(agent.target)
    with channel:
        request = agent_service_pb2.WatchHostProfileRequest()
        request.interval.FromSeconds(1)
        stream = stub.WatchHostProfile(request, timeout=30)
        first, second = next(stream), next(stream)
        assert (first.sequence, second.sequence) == (1, 2)
        assert (
            second.profile.collected_at.ToNanoseconds() > first.profile.collected_at.ToNanoseconds()
        )
        agent.process.send_signal(signal.SIGTERM)
        with pytest.raises(grpc.RpcError) as ended:
            for _ in stream:
                pass
    assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
    assert agent.process.wait(15) == 0


def test_watch_interval_out_of_range_is_refused_with_details(agent: RunningAgent) -> None:
    channel, stub = _stub(agent.target)
    with channel:
        request = agent_service_pb2.WatchHostProfileRequest()
        request.interval.FromMilliseconds(10)
        with pytest.raises(grpc.RpcError) as refused:
            next(stub.WatchHostProfile(request, timeout=10))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "out of range" in (refused.value.details() or "")


def test_listen_without_tls_is_refused(workdir: Path) -> None:
    result = run_agent_command("--socket", str(workdir / "a.sock"), "--listen", "127.0.0.1:0")
    assert result.returncode == 2
    assert "requires mutual TLS" in result.stderr


@dataclass
class TlsAgent:
    agent: RunningAgent
    ca: Path
    port: int


class TestMutualTls:
    """Over TCP the agent accepts only clients whose certificate its CA signed."""

    @pytest.fixture
    def authority(self) -> Authority:
        return Authority("ozwald test CA")

    @pytest.fixture
    def tls_agent(self, workdir: Path, authority: Authority) -> TlsAgent:
        ca = authority.write_pem(workdir / "ca.pem")
        cert, key = authority.issue("agent", server=True).write(workdir, "agent")
        port = _free_port()
        running = start_agent(
            workdir,
            [
                "--listen",
                f"127.0.0.1:{port}",
                "--tls-cert",
                str(cert),
                "--tls-key",
                str(key),
                "--tls-client-ca",
                str(ca),
            ],
        )
        return TlsAgent(running, ca, port)

    def _call(self, tls: TlsAgent, client: Issued | None) -> None:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=tls.ca.read_bytes(),
            private_key=client.key if client else None,
            certificate_chain=client.cert if client else None,
        )
        with grpc.secure_channel(f"localhost:{tls.port}", credentials) as channel:
            agent_service_pb2_grpc.AgentServiceStub(channel).GetHostProfile(
                agent_service_pb2.GetHostProfileRequest(), timeout=10
            )

    def test_client_signed_by_the_ca_is_served(
        self, tls_agent: TlsAgent, authority: Authority
    ) -> None:
        self._call(tls_agent, authority.issue("operator", server=False))
        assert tls_agent.agent.terminate() == 0

    def test_client_without_certificate_is_refused(self, tls_agent: TlsAgent) -> None:
        with pytest.raises(grpc.RpcError) as refused:
            self._call(tls_agent, None)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert tls_agent.agent.terminate() == 0

    def test_client_from_a_foreign_ca_is_refused(self, tls_agent: TlsAgent) -> None:
        intruder = Authority("foreign CA").issue("intruder", server=False)
        with pytest.raises(grpc.RpcError) as refused:
            self._call(tls_agent, intruder)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert tls_agent.agent.terminate() == 0

    def test_second_agent_cannot_share_the_tcp_port(
        self, tls_agent: TlsAgent, workdir: Path
    ) -> None:
        other = workdir / "other"
        other.mkdir()
        second = start_agent(other, tls_agent.agent.extra_args, wait=False)
        assert second.process.wait(30) == 4
        assert f"cannot listen on 127.0.0.1:{tls_agent.port}" in second.logs()
        assert tls_agent.agent.terminate() == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_agent_module_runs_as_a_script() -> None:
    # The console script and `python -m ozwald_agent.main` are the same entry point.
    result = run_agent_command("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("ozwald-agent ")
