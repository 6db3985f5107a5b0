"""`ozwald host` end to end: argv in, a real in-process agent, text or JSON out."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import json_format
from ozwald.common.v1 import error_reason_pb2
from ozwald.common.v1.host_profile_pb2 import HostProfile

from ozwald_sdk.agent_client import AgentClient
from ozwald_sdk.cli.main import main
from ozwald_sdk.errors import ExitCode
from ozwald_sdk.testing import Failure, FakeAgent, serve_agent


@pytest.fixture
def fake() -> FakeAgent:
    return FakeAgent()


@pytest.fixture
def address(fake: FakeAgent) -> Iterator[str]:
    with serve_agent(fake) as address:
        yield address


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _assert_fits_80_columns(text: str) -> None:
    too_wide = [line for line in text.splitlines() if len(line) > 80]
    assert too_wide == []


def test_cpu_only_host_shows_cores_memory_and_why_each_gpu_vendor_is_absent(
    capsys: pytest.CaptureFixture[str],
    fake: FakeAgent,
    address: str,
    cpu_only_profile: HostProfile,
) -> None:
    fake.profile = cpu_only_profile
    code, out, err = _run(capsys, "--agent", address, "host")
    assert (code, err) == (ExitCode.OK, "")
    _assert_fits_80_columns(out)
    assert "2 logical, 1 physical, 2 usable by the agent" in out
    assert "24.0 GiB" in out
    assert "18.0 GiB (75%)" in out
    nvidia = out[out.index("NVIDIA GPUs") : out.index("AMD GPUs")]
    assert "absent (no driver)" in nvidia
    assert "NVML Shared Library Not Found" in nvidia
    amd = out[out.index("AMD GPUs") :]
    assert "absent (library missing)" in amd
    assert "No module named 'amdsmi'" in amd
    assert "docker, unreachable" in out
    assert "no socket at its address" in out


def test_eight_gpu_host_shows_a_gpu_table(
    capsys: pytest.CaptureFixture[str],
    fake: FakeAgent,
    address: str,
    eight_gpu_profile: HostProfile,
) -> None:
    fake.profile = eight_gpu_profile
    code, out, _ = _run(capsys, "--agent", address, "host")
    assert code == ExitCode.OK
    _assert_fits_80_columns(out)
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["#", "Name"])
    rows = lines[header + 1 : header + 9]
    assert [row.split()[0] for row in rows] == [str(i) for i in range(8)]
    assert all("NVIDIA H100 80GB HBM3" in row for row in rows)
    assert rows[0].split()[-6:] == ["70.0", "/", "79.6", "9.0", "off", "1"]
    assert "0.5 / 79.6" in rows[2]
    assert "off (next: on)" in rows[7]
    assert "550.54.15, CUDA 12.4" in out
    assert "8 devices via nvml" in out
    assert "process list not readable" in out
    assert "384 logical, 192 physical" in out
    assert "2.0 TiB" in out


def test_alias_show_host_resources_and_options_after_the_subcommand(
    capsys: pytest.CaptureFixture[str], address: str
) -> None:
    code, out, _ = _run(capsys, "show_host_resources", "--agent", address)
    assert code == ExitCode.OK
    assert "fake-host" in out


def test_json_gives_machines_every_field(
    capsys: pytest.CaptureFixture[str],
    fake: FakeAgent,
    address: str,
    cpu_only_profile: HostProfile,
) -> None:
    fake.profile = cpu_only_profile
    code, out, _ = _run(capsys, "--agent", address, "--json", "host")
    assert code == ExitCode.OK
    assert json_format.Parse(out, HostProfile()) == cpu_only_profile
    # Zero values are printed, under their proto names, so scripts need no defaults.
    assert '"swap_total_bytes": "0"' in out
    assert '"present": false' in out
    assert '"absence_reason": "GPU_ABSENCE_REASON_NO_DRIVER"' in out


def test_agent_address_comes_from_the_environment(
    capsys: pytest.CaptureFixture[str], address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OZWALD_AGENT", address)
    code, out, _ = _run(capsys, "host")
    assert code == ExitCode.OK
    assert "fake-host" in out


def test_no_agent_exits_3_with_error_and_hint_and_no_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _run(capsys, "--agent", "/tmp/oz-nobody-home/agent.sock", "host")
    assert code == ExitCode.AGENT_UNREACHABLE
    assert out == ""
    error, hint = err.splitlines()
    assert error.startswith("error: no Ozwald agent answers at unix:///tmp/oz-nobody-home/")
    assert hint.startswith("hint: start one with `ozwald-agent`")
    assert "Traceback" not in err


def test_tcp_without_tls_exits_4_saying_what_to_give(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OZWALD_TLS_CA", "OZWALD_TLS_CERT", "OZWALD_TLS_KEY"):
        monkeypatch.delenv(name, raising=False)
    code, _, err = _run(capsys, "--agent", "gpu-box-1:7443", "host")
    assert code == ExitCode.CONNECTION_CONFIG
    assert "mutual TLS" in err
    assert "hint: " in err


def test_slow_agent_exits_6_after_the_timeout(
    capsys: pytest.CaptureFixture[str], fake: FakeAgent, address: str
) -> None:
    fake.delay = 1.0
    code, _, err = _run(capsys, "--agent", address, "--timeout", "0.2", "host")
    assert code == ExitCode.DEADLINE_EXCEEDED
    assert "did not answer GetHostProfile within 0.2 s" in err


def test_agent_failure_shows_the_agent_s_message_and_remedy(
    capsys: pytest.CaptureFixture[str], fake: FakeAgent, address: str
) -> None:
    fake.fail_next(
        Failure(
            grpc.StatusCode.INTERNAL,
            "the agent could not collect the host profile: boom",
            error_reason_pb2.ERROR_REASON_HOST_PROFILE_FAILED,
            remedy="look at the agent's log for the traceback and report it",
        )
    )
    code, _, err = _run(capsys, "--agent", address, "host")
    assert code == ExitCode.FAILURE
    assert err.splitlines() == [
        "error: the agent could not collect the host profile: boom",
        "hint: look at the agent's log for the traceback and report it",
    ]


@pytest.mark.parametrize("timeout", ["0", "-1", "soon"])
def test_bad_timeout_is_a_usage_error(capsys: pytest.CaptureFixture[str], timeout: str) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["--timeout", timeout, "host"])
    assert raised.value.code == ExitCode.USAGE
    assert "--timeout" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["--version"])
    assert raised.value.code == 0
    assert capsys.readouterr().out.startswith("ozwald ")


def test_exit_codes_are_the_documented_ones() -> None:
    # Scripts branch on these numbers: changing one is a breaking change.
    assert {code.name: code.value for code in ExitCode} == {
        "OK": 0,
        "FAILURE": 1,
        "USAGE": 2,
        "AGENT_UNREACHABLE": 3,
        "CONNECTION_CONFIG": 4,
        "PERMISSION_DENIED": 5,
        "DEADLINE_EXCEEDED": 6,
        "INVALID_ARGUMENT": 7,
        "AGENT_TOO_OLD": 8,
        "CONFIG_INVALID": 10,
        "ADMISSION_REFUSED": 11,
        "SERVICE_FAILED": 12,
        "SERVICE_NOT_FOUND": 13,
        "CONTAINER_RUNTIME_UNAVAILABLE": 14,
        "WEBHOOK_VETOED": 15,
        "VAULT_LOCKED": 16,
        "SECRET_NOT_FOUND": 17,
        "DEPLOYMENT_INVALID": 18,
        "DEPLOYMENT_NOT_FOUND": 19,
        "AUDIT_TAMPERED": 20,
        "HOST_NOT_FOUND": 21,
        "ROLLOUT_NOT_FOUND": 22,
        "ROLLOUT_NOT_ACTIVE": 23,
        "INTERRUPTED": 130,
    }


def test_ctrl_c_exits_130_without_a_traceback(
    capsys: pytest.CaptureFixture[str], address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(self: AgentClient, *, timeout: float | None = None) -> HostProfile:
        raise KeyboardInterrupt

    monkeypatch.setattr(AgentClient, "get_host_profile", interrupted)
    code, out, err = _run(capsys, "--agent", address, "host")
    assert code == ExitCode.INTERRUPTED
    assert (out, err) == ("", "")
