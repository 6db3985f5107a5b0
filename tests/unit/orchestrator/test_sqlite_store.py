"""The SQLite store: one transaction per batch, everything read back as written."""

from __future__ import annotations

import datetime
import sqlite3
from pathlib import Path

import pytest
from ozwald.agent.v1 import footprint_pb2
from ozwald.orchestrator.v1 import agent_link_service_pb2, fleet_state_pb2

from ozwald_orchestrator.store.protocol import (
    DesiredVersion,
    GpuHold,
    RemovedDeployment,
    StoreBatch,
)
from ozwald_orchestrator.store.sqlite import SqliteFleetStore
from tests.unit.orchestrator.fakes import EPOCH, deployment


def _store(tmp_path: Path) -> SqliteFleetStore:
    return SqliteFleetStore(tmp_path / "orchestrator.db")


def test_an_empty_store_loads_empty(tmp_path: Path) -> None:
    snapshot = _store(tmp_path).load()
    assert snapshot.desired_version == 0
    assert snapshot.deployments == [] and snapshot.instances == [] and snapshot.hosts == []
    assert snapshot.last_event_sequence == 0


def test_a_batch_reads_back_after_reopening(tmp_path: Path) -> None:
    store = _store(tmp_path)
    web = deployment("web", 2)
    web.version = 1
    instance = fleet_state_pb2.Instance(id="web-0", deployment="web", host_id="h1")
    host = fleet_state_pb2.Host(
        id="h1", state=fleet_state_pb2.HOST_STATE_READY, labels={"zone": "a"}
    )
    host.last_seen.FromDatetime(EPOCH)
    assignment = agent_link_service_pb2.Assignment(version=3, services=[web.candidates[0]])
    event = fleet_state_pb2.FleetEvent(sequence=1, kind="host-joined", host_id="h1")
    event.time.FromDatetime(EPOCH)
    footprint = footprint_pb2.Footprint(fingerprint="f" * 64, peak_memory_bytes=5)
    footprint.measured_at.FromDatetime(EPOCH)
    store.commit(
        StoreBatch(
            desired_version=DesiredVersion(1, EPOCH, "create web"),
            deployments=[web],
            instances=[instance],
            instance_gpus={"web-0": GpuHold(1, (0, 2))},
            hosts=[host],
            assignments={"h1": assignment},
            events=[event],
            footprints=[footprint],
        )
    )
    store.close()
    snapshot = _store(tmp_path).load()
    assert snapshot.desired_version == 1
    assert snapshot.deployments == [web]
    assert snapshot.instances == [instance]
    assert snapshot.instance_gpus == {"web-0": GpuHold(1, (0, 2))}
    assert [h.id for h in snapshot.hosts] == ["h1"] and snapshot.hosts[0].labels["zone"] == "a"
    assert snapshot.assignments == {"h1": assignment}
    assert snapshot.footprints == [footprint]
    assert snapshot.last_event_sequence == 1
    assert snapshot.deployment_versions == {"web": 1}


def test_put_instances_keeps_the_gpus_stored_before(tmp_path: Path) -> None:
    store = _store(tmp_path)
    instance = fleet_state_pb2.Instance(id="web-0", deployment="web", host_id="h1")
    store.commit(StoreBatch(instances=[instance], instance_gpus={"web-0": GpuHold(1, (3,))}))
    instance.state = fleet_state_pb2.INSTANCE_STATE_RUNNING
    store.put_instances([instance])
    snapshot = store.load()
    assert snapshot.instances[0].state == fleet_state_pb2.INSTANCE_STATE_RUNNING
    assert snapshot.instance_gpus["web-0"] == GpuHold(1, (3,))


def test_last_seen_moves_only_forward_without_rewriting_the_host(tmp_path: Path) -> None:
    store = _store(tmp_path)
    host = fleet_state_pb2.Host(id="h1")
    host.last_seen.FromDatetime(EPOCH)
    store.commit(StoreBatch(hosts=[host]))
    later = EPOCH + datetime.timedelta(seconds=30)
    store.commit(StoreBatch(last_seen={"h1": later}))
    store.commit(StoreBatch(last_seen={"h1": EPOCH}))
    [loaded] = store.load().hosts
    assert loaded.last_seen.ToDatetime(datetime.UTC) == later


def test_every_version_of_a_deployment_is_kept_and_removal_is_recorded(tmp_path: Path) -> None:
    store = _store(tmp_path)
    first = deployment("web", 1)
    first.version = 1
    second = deployment("web", 3)
    second.version = 2
    store.commit(
        StoreBatch(desired_version=DesiredVersion(1, EPOCH, "create web"), deployments=[first])
    )
    store.commit(
        StoreBatch(desired_version=DesiredVersion(2, EPOCH, "update web"), deployments=[second])
    )
    store.commit(
        StoreBatch(
            desired_version=DesiredVersion(3, EPOCH, "delete web"),
            removed_deployments=[RemovedDeployment("web", 3)],
        )
    )
    history = store.deployment_history("web")
    assert [(r.deployment.version, r.deployment.replicas, r.deleted) for r in history] == [
        (1, 1, False),
        (2, 3, False),
        (3, 3, True),
    ]
    assert [r.desired_version for r in history] == [1, 2, 3]
    assert [v.summary for v in store.desired_versions()] == [
        "create web",
        "update web",
        "delete web",
    ]
    snapshot = store.load()
    assert snapshot.deployments == []
    assert snapshot.deployment_versions == {"web": 3}


def test_events_read_in_pages_after_a_sequence(tmp_path: Path) -> None:
    store = _store(tmp_path)
    events = []
    for sequence in range(1, 8):
        event = fleet_state_pb2.FleetEvent(sequence=sequence, kind="host-ready")
        event.time.FromDatetime(EPOCH)
        events.append(event)
    store.commit(StoreBatch(events=events))
    assert [e.sequence for e in store.read_events(2, 3)] == [3, 4, 5]
    assert [e.sequence for e in store.read_events(5, 100)] == [6, 7]
    assert store.read_events(7, 100) == []


def test_a_failed_batch_changes_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path)
    event = fleet_state_pb2.FleetEvent(sequence=1, kind="host-ready")
    store.commit(StoreBatch(events=[event]))
    duplicate = StoreBatch(
        instances=[fleet_state_pb2.Instance(id="web-0", deployment="web")], events=[event]
    )
    with pytest.raises(sqlite3.IntegrityError):
        store.commit(duplicate)
    assert store.load().instances == []
