"""Exit events, logs (tail and follow) and commands in containers, on the real engine."""

from __future__ import annotations

import queue
import threading
import time

import pytest
from ozwald.common.v1 import service_spec_pb2 as spec_pb2

from ozwald_agent.runtime import (
    ContainerExited,
    ContainerNotRunningError,
    DockerRuntime,
    RuntimeEvent,
    StoppableIterator,
    probe_command,
)
from tests.integration.runtime.conftest import wait_until
from tests.integration.runtime.services import IDLE, start_service, tiny

pytestmark = pytest.mark.integration


def _running(realm: str, name: str, script: str, **fields: object) -> spec_pb2.ServiceSpec:
    spec = tiny(realm, name=name, command=["sh", "-c", script], **fields)
    spec.ClearField("health_check")
    return spec


def _watch(
    runtime: DockerRuntime,
) -> tuple[StoppableIterator[RuntimeEvent], queue.Queue[RuntimeEvent], threading.Thread]:
    """Exits collected by a thread; the short sleep lets the stream open before any exit."""
    watcher = runtime.watch_exits()
    events: queue.Queue[RuntimeEvent] = queue.Queue()
    reader = threading.Thread(target=lambda: _drain(watcher, events), daemon=True)
    reader.start()
    time.sleep(0.2)
    return watcher, events, reader


def _drain(watcher: StoppableIterator[RuntimeEvent], events: queue.Queue[RuntimeEvent]) -> None:
    for event in watcher:
        events.put(event)


def _next_exit(events: queue.Queue[RuntimeEvent], name: str) -> ContainerExited:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        event = events.get(timeout=max(deadline - time.monotonic(), 0.01))
        if isinstance(event, ContainerExited) and event.name == name:
            return event
    raise AssertionError(f"no exit of {name}")


def test_exit_events_carry_the_exit_code_and_the_service(
    runtime: DockerRuntime, realm: str
) -> None:
    watcher, events, reader = _watch(runtime)
    try:
        crash = runtime.create(_running(realm, "crash", "echo dying; exit 7"), fingerprint="fp")
        runtime.start(crash.id)

        exited = _next_exit(events, crash.name)
    finally:
        watcher.close()
        reader.join(5)

    assert exited.container_id == crash.id
    assert exited.exit_code == 7
    assert not exited.oom_killed
    assert exited.service is not None
    assert (exited.service.realm, exited.service.service) == (realm, "crash")
    assert not reader.is_alive()
    info = runtime.inspect(crash.id)
    assert info.exit_code == 7
    assert runtime.logs(crash.id) == ["dying"]


def test_an_out_of_memory_kill_is_reported_as_such(runtime: DockerRuntime, realm: str) -> None:
    hog = _running(
        realm,
        "hog",
        # Grows a shell variable until the 16 MiB limit is hit (no swap: memswap = memory).
        "x=a; while true; do x=$x$x; done",
        resources=spec_pb2.ResourceRequirements(memory_bytes=16 << 20),
    )
    watcher, events, reader = _watch(runtime)
    try:
        created = runtime.create(hog, fingerprint="fp")
        runtime.start(created.id)
        exited = _next_exit(events, created.name)
    finally:
        watcher.close()
        reader.join(5)

    assert exited.exit_code == 137
    assert exited.oom_killed
    assert runtime.inspect(created.id).oom_killed


def test_logs_tail_and_follow(runtime: DockerRuntime, realm: str) -> None:
    ticker = _running(
        realm,
        "ticker",
        "for i in 1 2 3 4 5; do echo line$i; done; echo oops >&2; "
        "i=0; while true; do i=$((i+1)); echo tick$i; sleep 0.05; done",
    )
    info = start_service(runtime, ticker)
    wait_until("ticks", lambda: "tick1" in runtime.logs(info.id, tail=None))

    everything = runtime.logs(info.id, tail=None)
    # stdout and stderr are separate pipes: their relative order is not kept.
    assert [line for line in everything if line.startswith("line")] == [
        "line1",
        "line2",
        "line3",
        "line4",
        "line5",
    ]
    assert "oops" in everything
    assert len(runtime.logs(info.id, tail=2)) == 2

    follower = runtime.follow_logs(info.id, tail=0)
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(follower))
    reader.start()
    wait_until("followed ticks", lambda: len(seen) >= 3)
    follower.close()
    reader.join(5)

    assert not reader.is_alive()
    assert all(line.startswith("tick") for line in seen)
    numbers = [int(line.removeprefix("tick")) for line in seen]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))


def test_following_ends_by_itself_when_the_container_stops(
    runtime: DockerRuntime, realm: str
) -> None:
    info = start_service(runtime, _running(realm, "brief", "echo one; sleep 0.3; echo two"))

    lines = list(runtime.follow_logs(info.id, tail=None))

    assert lines == ["one", "two"]


def test_command_probes_pass_fail_and_time_out(runtime: DockerRuntime, realm: str) -> None:
    info = start_service(runtime, tiny(realm))

    assert probe_command(runtime, info.id, ["cat", "/www/healthz"], 5) == (True, "exit 0: ok")
    failed = probe_command(runtime, info.id, ["sh", "-c", "echo not ready >&2; exit 1"], 5)
    assert failed == (False, "exit 1: not ready")
    began = time.monotonic()
    hung = probe_command(runtime, info.id, ["sleep", "30"], 0.5)
    assert hung == (False, "sleep: no exit within 0.5 s")
    assert time.monotonic() - began < 3
    # The hung command was killed, not left to pile up against the pids limit.
    wait_until(
        "the timed-out sleep is gone",
        lambda: "sleep 30" not in runtime.exec(info.id, ["ps"], timeout_s=5).output,
    )


def test_a_stopped_container_has_no_address_and_runs_no_commands(
    runtime: DockerRuntime, realm: str
) -> None:
    spec = tiny(realm, command=IDLE)
    spec.ClearField("health_check")
    info = start_service(runtime, spec)
    runtime.stop(info.id, timeout_s=2)

    with pytest.raises(ContainerNotRunningError):
        runtime.container_ip(info.id)
    with pytest.raises(ContainerNotRunningError):
        runtime.exec(info.id, ["true"], timeout_s=2)
