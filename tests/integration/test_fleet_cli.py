"""The fleet commands against a real `ozwald-orchestrator` process on a unix socket, with
its state in a temporary directory and no agents: the deployments are stored, their
instances stay PENDING with a reason, and `explain` says why."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ozwald_sdk.errors import ExitCode

pytestmark = pytest.mark.integration

CONFIG = """\
version: 1
realms:
  default:
    services:
      embed:
        image: ozwald/tiny:local
        varieties:
          cpu: {resources: {memory: 256MiB}}
          nvidia: {resources: {gpus: {count: 1}}}
fleet:
  deployments:
    embed:
      service: embed
      replicas: 2
      constraints: {spread: true}
"""
START_TIMEOUT = 30.0


def ozwald(socket: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ozwald_sdk.cli.main", "--orchestrator", str(socket), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def orchestrator() -> Iterator[Path]:
    # A short directory: unix socket paths have at most 107 bytes.
    with tempfile.TemporaryDirectory(prefix="ozo-", dir="/tmp") as directory:
        socket = Path(directory) / "orchestrator.sock"
        log = (Path(directory) / "orchestrator.log").open("w")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ozwald_orchestrator.main",
                "--socket",
                str(socket),
                "--state-dir",
                str(Path(directory) / "state"),
                "--log-format",
                "text",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not socket.exists():
                assert process.poll() is None, (Path(directory) / "orchestrator.log").read_text()
                assert time.monotonic() < deadline, "the orchestrator did not open its socket"
                time.sleep(0.05)
            yield socket
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "ozwald.yml"
    path.write_text(CONFIG)
    return path


def test_plan_apply_and_read_back_a_deployment_nobody_can_run_yet(
    orchestrator: Path, config: Path
) -> None:
    plan = ozwald(orchestrator, "apply", "-f", str(config), "--plan")
    assert plan.returncode == ExitCode.OK, plan.stderr
    assert "+ create embed (2 instances)" in plan.stdout
    assert "PENDING" in plan.stdout
    listed_before = ozwald(orchestrator, "deployments", "--json")
    assert json.loads(listed_before.stdout).get("deployments", []) == []

    applied = ozwald(orchestrator, "apply", "-f", str(config))
    again = ozwald(orchestrator, "apply", "-f", str(config), "--json")

    assert applied.returncode == ExitCode.OK, applied.stderr
    assert applied.stdout.startswith("Applied as desired-state version 1:")
    assert "`ozwald events -f --after 0`" in applied.stdout
    assert again.returncode == ExitCode.OK, again.stderr
    [change] = json.loads(again.stdout)["plan"]["changes"]
    assert change["kind"] == "DEPLOYMENT_CHANGE_KIND_UNCHANGED"

    one = ozwald(orchestrator, "deployments", "embed", "--json")
    assert one.returncode == ExitCode.OK, one.stderr
    document = json.loads(one.stdout)
    deployment = document["deployment"]
    assert deployment["version"] == "1"
    assert [c["variety"] for c in deployment["candidates"]] == ["nvidia", "cpu"]
    assert {c["name"] for c in deployment["candidates"]} == {"embed"}
    assert deployment["constraints"]["spread_across_hosts"] is True
    instances = document["instances"]
    assert [i["id"] for i in instances] == ["embed-0", "embed-1"]
    assert {i["state"] for i in instances} == {"INSTANCE_STATE_PENDING"}
    assert all(i["reason"] for i in instances), "a pending instance says why"

    table = ozwald(orchestrator, "instances", "--deployment", "embed")
    assert table.returncode == ExitCode.OK, table.stderr
    assert table.stdout.splitlines()[1].split()[:4] == ["embed-0", "-", "-", "PENDING"]


def test_explain_says_why_nothing_is_placed(orchestrator: Path, config: Path) -> None:
    ozwald(orchestrator, "apply", "-f", str(config))

    explained = ozwald(orchestrator, "explain", "embed")
    as_json = ozwald(orchestrator, "explain", "embed", "--json")
    unknown = ozwald(orchestrator, "explain", "nope")

    assert explained.returncode == ExitCode.OK, explained.stderr
    assert explained.stdout.startswith("Deployment embed, placed by the binpack strategy:")
    assert "embed-0  PENDING" in explained.stdout
    answers = json.loads(as_json.stdout)["instances"]
    assert [a["instance"] for a in answers] == ["embed-0", "embed-1"]
    assert all(a["host_id"] == "" and a["summary"] for a in answers)
    assert "host" in answers[0]["summary"]
    assert unknown.returncode == ExitCode.DEPLOYMENT_NOT_FOUND
    assert "error: " in unknown.stderr and "nope" in unknown.stderr


def test_events_list_what_happened_and_follow_what_happens(
    orchestrator: Path, config: Path, tmp_path: Path
) -> None:
    follower = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ozwald_sdk.cli.main",
            "--orchestrator",
            str(orchestrator),
            "events",
            "-f",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ozwald(orchestrator, "apply", "-f", str(config))
        assert follower.stdout is not None
        followed = [json.loads(follower.stdout.readline()) for _ in range(2)]
    finally:
        follower.send_signal(signal.SIGINT)
        _, err = follower.communicate(timeout=20)

    stored = ozwald(orchestrator, "events")
    after = ozwald(orchestrator, "events", "--after", "1", "--json")

    assert follower.returncode == ExitCode.INTERRUPTED, err
    assert "Traceback" not in err
    assert followed[0]["kind"] == "deployment-applied"
    assert [e["sequence"] for e in followed] == ["1", "2"]
    assert stored.returncode == ExitCode.OK, stored.stderr
    lines = stored.stdout.splitlines()
    assert lines[0].startswith("#1 ") and "deployment-applied embed" in lines[0]
    assert any("instance-pending embed/embed-0" in line for line in lines)
    sequences = [json.loads(line)["sequence"] for line in after.stdout.splitlines()]
    assert sequences and sequences[0] == "2"


def test_no_orchestrator_says_how_to_start_one(tmp_path: Path) -> None:
    missing = ozwald(tmp_path / "none.sock", "hosts")

    assert missing.returncode == ExitCode.AGENT_UNREACHABLE
    assert "no Ozwald orchestrator answers" in missing.stderr
    assert "ozwald-orchestrator" in missing.stderr
