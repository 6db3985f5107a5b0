"""The audit log of a real orchestrator process: an operator's apply over mutual TLS and
what a (simulated) agent then reports are on record with who did it and the state before
and after; `ozwald audit verify` passes, and names the record a person changed in the
database file behind the orchestrator's back. An agent's certificate may not drive the
fleet."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ozwald.orchestrator.v1 import fleet_state_pb2

from ozwald_sdk import ca
from ozwald_sdk.errors import ExitCode, RoleNotAllowedError
from ozwald_sdk.orchestrator_client import FleetClient
from ozwald_sdk.target import resolve_orchestrator_target
from ozwald_testbed.sim_orchestrator import OrchestratorProcess, OrchestratorSettings
from ozwald_testbed.sim_pki import FleetPki
from ozwald_testbed.simulated_fleet import SimulatedFleet, hosts_from_fixtures
from ozwald_testbed.simulated_runtime import RuntimeTiming
from tests.integration.fleet_sim.simbed import REALM, cpu_deployment
from tests.support.short_paths import short_tmpdir

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hardware"
SETTINGS = OrchestratorSettings(
    heartbeat_interval_s=0.5, heartbeat_ttl_s=2.0, reschedule_grace_s=3.0
)
TIMING = RuntimeTiming(ready_after_s=0.2, restart_after_s=0.2, stop_after_s=0.1)
OPERATOR = "alice"


@pytest.fixture
def orchestrator() -> Iterator[tuple[OrchestratorProcess, FleetPki]]:
    with short_tmpdir() as work:
        pki = FleetPki(work / "pki")
        process = OrchestratorProcess(work, pki, SETTINGS)
        process.start()
        try:
            yield process, pki
        finally:
            process.stop()


def _tls_flags(pki: FleetPki, role: ca.Role, name: str) -> list[str]:
    if role == "operator":
        files = pki.operator(name)
        cert, key = files.cert, files.key
    else:
        issued = ca.issue(pki.directory, role, name, out=pki.directory / "extra", force=True)
        cert, key = issued.cert, issued.key
    return ["--tls-ca", str(pki.ca_cert), "--tls-cert", str(cert), "--tls-key", str(key)]


def ozwald(
    process: OrchestratorProcess, pki: FleetPki, *argv: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "ozwald_sdk.cli.main",
            "--orchestrator",
            process.target,
            *_tls_flags(pki, "operator", OPERATOR),
            *argv,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def audit_records(process: OrchestratorProcess, pki: FleetPki) -> list[dict[str, Any]]:
    result = ozwald(process, pki, "audit", "--json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def _state(record: dict[str, Any], side: str) -> Any:
    text = record[f"{side}_json"]
    return json.loads(text) if text else None


def operator_client(process: OrchestratorProcess, pki: FleetPki, name: str) -> FleetClient:
    files = pki.operator(name)
    target = resolve_orchestrator_target(
        process.target, tls_ca=files.ca, tls_cert=files.cert, tls_key=files.key
    )
    return FleetClient(target, timeout=10)


async def _run_one_instance(process: OrchestratorProcess, pki: FleetPki) -> None:
    fleet = SimulatedFleet(process.target, pki, timing=TIMING)
    fleet.add_all(hosts_from_fixtures(FIXTURES, 1, names=("cpu_only",), prefix="aud"))
    await fleet.start()
    try:
        await fleet.wait_connected(20)
        with operator_client(process, pki, OPERATOR) as client:
            await asyncio.to_thread(
                client.apply_deployments, [cpu_deployment("embed", 1)], realms=[REALM]
            )
            deadline = time.monotonic() + 20
            while True:
                instances = await asyncio.to_thread(client.list_instances, deployment="embed")
                if instances and instances[0].state == fleet_state_pb2.INSTANCE_STATE_RUNNING:
                    break
                assert time.monotonic() < deadline, f"not running: {instances}"
                await asyncio.sleep(0.1)
    finally:
        await fleet.stop()


def test_operator_and_agent_actions_are_on_record_and_tampering_is_named(
    orchestrator: tuple[OrchestratorProcess, FleetPki],
) -> None:
    process, pki = orchestrator
    asyncio.run(_run_one_instance(process, pki))

    records = audit_records(process, pki)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_kind.setdefault(record["kind"], []).append(record)
    [created] = by_kind["deployment-created"]
    assert created["actor"] == f"operator:{OPERATOR}"
    assert created["deployment"] == "embed"
    assert _state(created, "before") is None
    assert _state(created, "after")["replicas"] == 1

    [joined] = by_kind["host-joined"]
    assert (joined["actor"], joined["host_id"]) == ("agent:aud-0000", "aud-0000")
    placed = by_kind["instance-placed"][0]
    assert placed["actor"] == "orchestrator" and placed["instance"] == "embed-0"
    assert (_state(placed, "before")["host_id"], _state(placed, "after")["host_id"]) == (
        "",
        "aud-0000",
    )
    running = [
        r
        for r in by_kind["instance-state-changed"]
        if (_state(r, "after") or {}).get("state") == "RUNNING"
    ]
    assert running and running[0]["actor"] == "agent:aud-0000"
    assert by_kind["assignment-changed"][0]["actor"] == "orchestrator"
    # Heartbeats changed nothing and are not on record.
    assert all("last_seen" not in r["after_json"] for r in records)

    verified = ozwald(process, pki, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert f"{len(records)} records checked" in verified.stdout

    # Someone with the database file drops the guard and rewrites who did the apply.
    sequence = int(created["sequence"])
    db = sqlite3.connect(process.state_dir / "orchestrator.db", isolation_level=None)
    try:
        db.execute("DROP TRIGGER audit_records_no_update")
        db.execute(
            "UPDATE audit_records SET actor = 'operator:mallory' WHERE sequence = ?", (sequence,)
        )
    finally:
        db.close()
    tampered = ozwald(process, pki, "audit", "verify")
    assert tampered.returncode == ExitCode.AUDIT_TAMPERED, tampered.stderr
    assert f"broken at record {sequence}" in tampered.stderr


def test_an_agent_certificate_may_not_use_fleet_service(
    orchestrator: tuple[OrchestratorProcess, FleetPki],
) -> None:
    process, pki = orchestrator
    issued = ca.issue(pki.directory, "agent", "h1", out=pki.directory / "rogue", force=True)
    target = resolve_orchestrator_target(
        process.target, tls_ca=pki.ca_cert, tls_cert=issued.cert, tls_key=issued.key
    )
    with FleetClient(target, timeout=10) as client, pytest.raises(RoleNotAllowedError) as caught:
        client.apply_deployments([cpu_deployment("embed", 1)], realms=[REALM])
    assert caught.value.role == "agent" and caught.value.required == "operator"
    assert "ozwald ca issue --role operator" in caught.value.remedy
    # Refused before it changed anything: nothing on record.
    assert not any(r["kind"] == "deployment-created" for r in audit_records(process, pki))

    # The CLI shows the refusal with the permission-denied exit code.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ozwald_sdk.cli.main",
            "--orchestrator",
            process.target,
            *_tls_flags(pki, "agent", "h2"),
            "hosts",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == ExitCode.PERMISSION_DENIED, result.stderr
    assert "role operator" in result.stderr
