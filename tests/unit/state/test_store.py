from __future__ import annotations

import threading
from pathlib import Path

import pytest
from ozwald.agent.v1 import service_scope_pb2, service_status_pb2
from ozwald.common.v1 import gpu_pb2, service_spec_pb2

from ozwald_agent.state import store as store_module
from ozwald_agent.state.store import AgentStore, DesiredService

DYNAMIC = service_scope_pb2.SERVICE_SCOPE_DYNAMIC
PERSISTENT = service_scope_pb2.SERVICE_SCOPE_PERSISTENT
READY = service_status_pb2.INSTANCE_STATE_READY


def _desired(name: str, scope: int = DYNAMIC, image: str = "img:1") -> DesiredService:
    spec = service_spec_pb2.ServiceSpec(realm="default", name=name, image=image)
    return DesiredService(
        spec=spec,
        scope=service_scope_pb2.ServiceScope.ValueType(scope),
        fingerprint=f"fp-{name}-{image}",
        gpu_vendor=gpu_pb2.GPU_VENDOR_NVIDIA,
        gpu_uuids=("GPU-1",),
    )


def test_agent_id_survives_reopening(tmp_path: Path) -> None:
    first = AgentStore(tmp_path / "agent.db")
    agent_id = first.agent_id()
    first.close()
    assert AgentStore(tmp_path / "agent.db").agent_id() == agent_id
    assert AgentStore(tmp_path / "other.db").agent_id() != agent_id


def test_replacing_one_scope_keeps_the_other(tmp_path: Path) -> None:
    store = AgentStore(tmp_path / "agent.db")
    store.replace_desired(PERSISTENT, [_desired("db", PERSISTENT)])
    store.replace_desired(DYNAMIC, [_desired("a"), _desired("b")])
    store.replace_desired(DYNAMIC, [_desired("b", image="img:2")])
    by_name = {d.spec.name: d for d in store.desired()}
    assert set(by_name) == {"db", "b"}
    assert by_name["b"].spec.image == "img:2"
    assert by_name["b"].gpu_uuids == ("GPU-1",)
    assert by_name["b"].gpu_vendor == gpu_pb2.GPU_VENDOR_NVIDIA
    assert by_name["b"].generation > by_name["db"].generation


def test_desired_state_survives_a_restart(tmp_path: Path) -> None:
    AgentStore(tmp_path / "agent.db").replace_desired(DYNAMIC, [_desired("a")])
    (reopened,) = AgentStore(tmp_path / "agent.db").desired()
    assert reopened.spec.name == "a"
    assert reopened.fingerprint == "fp-a-img:1"


def test_a_failed_replace_changes_nothing(tmp_path: Path) -> None:
    store = AgentStore(tmp_path / "agent.db")
    store.replace_desired(DYNAMIC, [_desired("a")])
    with pytest.raises(Exception, match="UNIQUE"):
        store.replace_desired(DYNAMIC, [_desired("b"), _desired("b")])
    assert [d.spec.name for d in store.desired()] == ["a"]


def test_events_are_numbered_and_resumable(tmp_path: Path) -> None:
    store = AgentStore(tmp_path / "agent.db")
    first = store.record_status(service_status_pb2.InstanceStatus(realm="r", name="a"))
    second = store.record_status(
        service_status_pb2.InstanceStatus(realm="r", name="a", state=READY)
    )
    assert second.sequence == first.sequence + 1
    assert [e.sequence for e in store.events_after(first.sequence)] == [second.sequence]
    assert store.last_sequence() == second.sequence
    (instance,) = store.instances()
    assert instance.state == READY


def test_old_events_are_pruned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "EVENT_RETENTION", 3)
    store = AgentStore(tmp_path / "agent.db")
    for _ in range(5):
        store.record_status(service_status_pb2.InstanceStatus(realm="r", name="a"))
    assert [e.sequence for e in store.events_after(0)] == [3, 4, 5]


def test_concurrent_writers_lose_no_event(tmp_path: Path) -> None:
    store = AgentStore(tmp_path / "agent.db")

    def write(name: str) -> None:
        for _ in range(50):
            store.record_status(service_status_pb2.InstanceStatus(realm="r", name=name))

    threads = [threading.Thread(target=write, args=(f"s{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [e.sequence for e in store.events_after(0)] == list(range(1, 201))
    assert len(store.instances()) == 4


def test_forgetting_an_instance(tmp_path: Path) -> None:
    store = AgentStore(tmp_path / "agent.db")
    store.record_status(service_status_pb2.InstanceStatus(realm="r", name="a"))
    store.forget_instance("r", "a")
    assert store.instances() == []
