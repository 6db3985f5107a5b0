"""The reconciler against an in-memory runtime: decisions, not Docker."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

from ozwald.agent.v1 import service_scope_pb2, service_status_pb2
from ozwald.common.v1 import gpu_pb2, host_profile_pb2, service_spec_pb2

from ozwald_agent.provisioning.event_feed import EventFeed
from ozwald_agent.provisioning.reconciler import Reconciler
from ozwald_agent.state.store import AgentStore, DesiredService
from ozwald_sdk.fingerprint import fingerprint
from tests.unit.provisioning.memory_runtime import MemoryRuntime

S = service_status_pb2


def _setup(tmp_path: Path) -> tuple[AgentStore, MemoryRuntime, Reconciler]:
    store = AgentStore(tmp_path / "agent.db")
    runtime = MemoryRuntime()
    reconciler = Reconciler(store, runtime, EventFeed(0), host_profile_pb2.HostProfile, _clock())
    return store, runtime, reconciler


def _clock() -> Callable[[], float]:
    """Each reading one second later: probes and backoffs are always due."""
    ticks = itertools.count()
    return lambda: float(next(ticks))


def _desire(store: AgentStore, *names: str) -> None:
    services = []
    for name in names:
        spec = service_spec_pb2.ServiceSpec(realm="r", name=name, image="img")
        services.append(
            DesiredService(
                spec=spec,
                scope=service_scope_pb2.SERVICE_SCOPE_DYNAMIC,
                fingerprint=fingerprint(spec),
                gpu_vendor=gpu_pb2.GPU_VENDOR_UNSPECIFIED,
                gpu_uuids=(),
            )
        )
    store.replace_desired(service_scope_pb2.SERVICE_SCOPE_DYNAMIC, services)


def _states(store: AgentStore) -> dict[str, int]:
    return {s.name: s.state for s in store.instances()}


def test_an_engine_outage_while_creating_waits_instead_of_failing(tmp_path: Path) -> None:
    store, runtime, reconciler = _setup(tmp_path)
    _desire(store, "web")
    reconciler.reconcile_once()  # lists fine
    runtime.engine_down = True
    reconciler.reconcile_once()  # cannot even list: nothing changes
    assert _states(store)["web"] != S.INSTANCE_STATE_FAILED
    runtime.engine_down = False
    reconciler.reconcile_once()
    reconciler.reconcile_once()
    assert _states(store)["web"] == S.INSTANCE_STATE_READY


def test_a_create_that_meets_a_dead_engine_is_retried(tmp_path: Path) -> None:
    store, runtime, reconciler = _setup(tmp_path)
    _desire(store, "web")
    original = runtime.create

    def create_then_die(*args: object, **kwargs: object) -> object:
        runtime.engine_down = True
        return original(*args, **kwargs)  # type: ignore[arg-type]

    runtime.create = create_then_die  # type: ignore[method-assign,assignment]
    reconciler.reconcile_once()
    status = store.instances()[0]
    assert status.state == S.INSTANCE_STATE_PENDING
    assert "engine unavailable" in status.reason
    runtime.create = original  # type: ignore[method-assign]
    runtime.engine_down = False
    reconciler.reconcile_once()
    reconciler.reconcile_once()
    assert _states(store)["web"] == S.INSTANCE_STATE_READY


def test_a_container_created_but_never_started_is_replaced(tmp_path: Path) -> None:
    store, runtime, reconciler = _setup(tmp_path)
    _desire(store, "web")
    spec = store.desired()[0]
    leftover = runtime.create(spec.spec, fingerprint=spec.fingerprint)
    reconciler.reconcile_once()
    assert leftover.id not in runtime.containers
    assert len(runtime.containers) == 1
    reconciler.reconcile_once()
    assert _states(store)["web"] == S.INSTANCE_STATE_READY


def test_a_failed_service_stays_failed_across_a_restart_until_reapplied(tmp_path: Path) -> None:
    store, runtime, reconciler = _setup(tmp_path)
    _desire(store, "web")
    runtime.engine_down = False
    failing = runtime.create

    def refuse(*args: object, **kwargs: object) -> object:
        from ozwald_agent.runtime.errors import ImageNotPresentError

        raise ImageNotPresentError("img")

    runtime.create = refuse  # type: ignore[method-assign,assignment]
    reconciler.reconcile_once()
    assert _states(store)["web"] == S.INSTANCE_STATE_FAILED
    runtime.create = failing  # type: ignore[method-assign]

    restarted = Reconciler(
        store, runtime, EventFeed(store.last_sequence()), host_profile_pb2.HostProfile, _clock()
    )
    restarted.reconcile_once()
    assert _states(store)["web"] == S.INSTANCE_STATE_FAILED

    _desire(store, "web")  # the same set again: a new generation retries it
    restarted.reconcile_once()
    restarted.reconcile_once()
    assert _states(store)["web"] == S.INSTANCE_STATE_READY


def test_a_started_service_is_probed_at_once_not_a_tick_later(tmp_path: Path) -> None:
    """Many services answer the moment they start: the first probe is due immediately (the
    next pass, with no wait), so readiness costs no extra 50 ms."""
    store = AgentStore(tmp_path / "agent.db")
    frozen = 100.0
    reconciler = Reconciler(
        store, MemoryRuntime(), EventFeed(0), host_profile_pb2.HostProfile, lambda: frozen
    )
    _desire(store, "web")

    reconciler.reconcile_once()  # creates and starts it
    assert _states(store)["web"] == S.INSTANCE_STATE_STARTING
    reconciler.reconcile_once()  # no time has passed: the first probe is already due

    assert _states(store)["web"] == S.INSTANCE_STATE_READY
