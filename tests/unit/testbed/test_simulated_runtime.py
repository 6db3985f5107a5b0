from __future__ import annotations

import asyncio

import pytest
from ozwald.agent.v1 import service_status_pb2 as status_pb2
from ozwald.common.v1 import service_spec_pb2

from ozwald_testbed.simulated_hardware import GIB, SimulatedHardware
from ozwald_testbed.simulated_runtime import RuntimeTiming, SimulatedRuntime

FAST = RuntimeTiming(ready_after_s=0.02, restart_after_s=0.02, stop_after_s=0.0, crash_after_s=0.01)
STATE = status_pb2.InstanceState


def _runtime(memory_gib: int = 16) -> tuple[SimulatedRuntime, list[tuple[list[str], list[str]]]]:
    hardware = SimulatedHardware("test", logical_cores=4, memory_total_bytes=memory_gib * GIB)
    runtime = SimulatedRuntime(hardware, hostname="h1", timing=FAST)
    seen: list[tuple[list[str], list[str]]] = []

    def record(changed: list[status_pb2.InstanceStatus], removed: list[str], at: float) -> None:
        assert at > 0
        seen.append(([f"{s.name}:{STATE.Name(s.state)}" for s in changed], removed))

    runtime.listen(record)
    return runtime, seen


def _spec(name: str, memory_gib: int = 1, **policy: int) -> service_spec_pb2.ServiceSpec:
    spec = service_spec_pb2.ServiceSpec(realm="r", name=name, image="img", variety="cpu")
    spec.resources.memory_bytes = memory_gib * GIB
    if policy:
        spec.restart_policy.kind = policy.get("kind", 0)  # type: ignore[assignment]
        spec.restart_policy.max_retries = policy.get("max_retries", 0)
    return spec


async def _until(runtime: SimulatedRuntime, name: str, state: int, timeout: float = 2.0) -> None:
    async def poll() -> None:
        while (s := runtime.status(name)) is None or s.state != state:
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


@pytest.mark.asyncio
async def test_admitted_instances_start_then_get_ready_and_changes_come_in_one_batch() -> None:
    runtime, seen = _runtime()
    plan = runtime.apply([_spec("a"), _spec("b")])
    assert plan.admitted
    await _until(runtime, "a", status_pb2.INSTANCE_STATE_READY)
    await _until(runtime, "b", status_pb2.INSTANCE_STATE_READY)
    assert seen[0] == (["a:INSTANCE_STATE_STARTING", "b:INSTANCE_STATE_STARTING"], [])
    ready = [c for batch, _ in seen for c in batch if c.endswith("READY")]
    assert sorted(ready) == ["a:INSTANCE_STATE_READY", "b:INSTANCE_STATE_READY"]
    status = runtime.status("a")
    assert status is not None and status.fingerprint and status.generation == 1


@pytest.mark.asyncio
async def test_reapplying_the_same_set_changes_nothing() -> None:
    runtime, seen = _runtime()
    runtime.apply([_spec("a")])
    await _until(runtime, "a", status_pb2.INSTANCE_STATE_READY)
    before = runtime.status("a")
    seen.clear()
    runtime.apply([_spec("a")])
    await asyncio.sleep(0.05)
    after = runtime.status("a")
    assert seen == []
    assert before is not None and after is not None
    assert after.container_id == before.container_id
    assert after.state == status_pb2.INSTANCE_STATE_READY


@pytest.mark.asyncio
async def test_a_crash_is_restarted_and_counted() -> None:
    runtime, seen = _runtime()
    runtime.apply([_spec("a")])
    await _until(runtime, "a", status_pb2.INSTANCE_STATE_READY)
    first = runtime.status("a")
    runtime.crash("a", exit_code=139)
    await asyncio.sleep(0)
    crashed = runtime.status("a")
    assert crashed is not None and crashed.state == status_pb2.INSTANCE_STATE_RESTARTING
    assert crashed.exited and crashed.last_exit_code == 139 and crashed.restart_count == 1
    await _until(runtime, "a", status_pb2.INSTANCE_STATE_READY)
    again = runtime.status("a")
    assert again is not None and first is not None
    assert again.container_id != first.container_id
    states = [c for batch, _ in seen for c in batch]
    assert states[-3:] == [
        "a:INSTANCE_STATE_RESTARTING",
        "a:INSTANCE_STATE_STARTING",
        "a:INSTANCE_STATE_READY",
    ]


@pytest.mark.asyncio
async def test_an_unhealthy_instance_is_reported_then_restarted() -> None:
    runtime, seen = _runtime()
    runtime.apply([_spec("a")])
    await _until(runtime, "a", status_pb2.INSTANCE_STATE_READY)
    seen.clear()
    runtime.turn_unhealthy("a")
    await _until(runtime, "a", status_pb2.INSTANCE_STATE_READY)
    states = [c for batch, _ in seen for c in batch]
    assert states == [
        "a:INSTANCE_STATE_UNHEALTHY",
        "a:INSTANCE_STATE_RESTARTING",
        "a:INSTANCE_STATE_STARTING",
        "a:INSTANCE_STATE_READY",
    ]
    status = runtime.status("a")
    assert status is not None and status.restart_count == 1 and not status.exited


@pytest.mark.asyncio
async def test_a_crash_loop_uses_up_its_restarts_and_fails() -> None:
    runtime, _ = _runtime()
    runtime.crash_loop_on_start("a", exit_code=3)
    runtime.apply([_spec("a", kind=service_spec_pb2.RESTART_POLICY_KIND_ON_FAILURE, max_retries=2)])
    await _until(runtime, "a", status_pb2.INSTANCE_STATE_FAILED)
    status = runtime.status("a")
    assert status is not None
    assert status.restart_count == 2
    assert "used up its 2 restarts" in status.reason


@pytest.mark.asyncio
async def test_vanished_memory_makes_admission_refuse_and_what_runs_keeps_running() -> None:
    runtime, _ = _runtime(memory_gib=16)
    runtime.apply([_spec("a", memory_gib=4)])
    await _until(runtime, "a", status_pb2.INSTANCE_STATE_READY)
    runtime.occupy_memory(10 * GIB)
    plan = runtime.apply([_spec("a", memory_gib=4), _spec("b", memory_gib=4)])
    assert not plan.admitted
    assert [r.name for r in plan.refusals] == ["b"]
    assert runtime.names() == ["a"]


@pytest.mark.asyncio
async def test_services_that_leave_the_set_are_removed() -> None:
    runtime, seen = _runtime()
    runtime.apply([_spec("a"), _spec("b")])
    await _until(runtime, "b", status_pb2.INSTANCE_STATE_READY)
    runtime.apply([_spec("a")])
    await asyncio.sleep(0.01)
    assert runtime.names() == ["a"]
    assert seen[-1] == ([], ["b"])


@pytest.mark.asyncio
async def test_power_off_loses_everything_silently() -> None:
    runtime, seen = _runtime()
    runtime.apply([_spec("a")])
    await asyncio.sleep(0)
    count = len(seen)
    runtime.power_off()
    await asyncio.sleep(0.05)
    assert runtime.statuses() == []
    assert len(seen) == count
