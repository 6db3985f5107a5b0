"""TTL then grace: silent hosts go DOWN, then LOST; hosts that speak stay READY."""

from __future__ import annotations

from ozwald.orchestrator.v1 import fleet_state_pb2

from ozwald_orchestrator.health_monitor import HealthMonitor, HealthSettings
from ozwald_orchestrator.state import FleetState, HostRecord
from tests.unit.orchestrator.fakes import FakeClock

SETTINGS = HealthSettings(heartbeat_interval_s=1, heartbeat_ttl_s=3, reschedule_grace_s=5)


def _fleet(clock: FakeClock, *states: fleet_state_pb2.HostState.ValueType) -> FleetState:
    fleet = FleetState()
    for number, state in enumerate(states):
        host = fleet_state_pb2.Host(id=f"h{number}", state=state)
        fleet.hosts[host.id] = HostRecord(host, clock.monotonic(), clock.now())
    return fleet


def test_a_host_that_speaks_within_the_ttl_stays_ready() -> None:
    clock = FakeClock()
    fleet = _fleet(clock, fleet_state_pb2.HOST_STATE_READY)
    monitor = HealthMonitor(fleet, clock, SETTINGS)
    for _ in range(10):
        clock.advance(2.9)
        fleet.hosts["h0"].last_seen = clock.monotonic()
        assert monitor.due() == []


def test_silence_past_the_ttl_is_down_and_past_the_grace_lost() -> None:
    clock = FakeClock()
    fleet = _fleet(clock, fleet_state_pb2.HOST_STATE_READY)
    monitor = HealthMonitor(fleet, clock, SETTINGS)
    clock.advance(3.0)
    assert monitor.due() == []
    clock.advance(0.1)
    [down] = monitor.due()
    assert down.to == fleet_state_pb2.HOST_STATE_DOWN and "TTL 3 s" in down.why
    fleet.hosts["h0"].host.state = fleet_state_pb2.HOST_STATE_DOWN
    clock.advance(4.8)
    assert monitor.due() == []
    clock.advance(0.2)
    [lost] = monitor.due()
    assert lost.to == fleet_state_pb2.HOST_STATE_LOST and "grace of 5 s" in lost.why


def test_lost_hosts_are_left_alone() -> None:
    clock = FakeClock()
    fleet = _fleet(clock, fleet_state_pb2.HOST_STATE_LOST)
    clock.advance(1000)
    assert HealthMonitor(fleet, clock, SETTINGS).due() == []


def test_during_the_restart_hold_a_host_not_yet_heard_from_is_not_down() -> None:
    clock = FakeClock()
    fleet = _fleet(clock, fleet_state_pb2.HOST_STATE_READY)
    monitor = HealthMonitor(fleet, clock, SETTINGS)
    monitor.hold(30)
    clock.advance(29.9)
    assert monitor.due() == []
    # After the hold, its silence counts from the hold's end.
    clock.advance(3.0)
    assert monitor.due() == []
    clock.advance(0.2)
    [down] = monitor.due()
    assert down.to == fleet_state_pb2.HOST_STATE_DOWN and "restarted" in down.why
    fleet.hosts["h0"].host.state = fleet_state_pb2.HOST_STATE_DOWN
    clock.advance(4.8)
    assert monitor.due() == []  # the reschedule grace still applies
    clock.advance(0.2)
    [lost] = monitor.due()
    assert lost.to == fleet_state_pb2.HOST_STATE_LOST


def test_a_host_heard_during_the_hold_is_timed_by_its_own_messages() -> None:
    clock = FakeClock()
    fleet = _fleet(clock, fleet_state_pb2.HOST_STATE_READY, fleet_state_pb2.HOST_STATE_READY)
    monitor = HealthMonitor(fleet, clock, SETTINGS)
    monitor.hold(30)
    clock.advance(12)  # h0's agent reconnects late, after its backoff
    fleet.hosts["h0"].last_seen = clock.monotonic()
    monitor.heard("h0")
    clock.advance(3.1)
    [down] = monitor.due()
    assert down.host.id == "h0" and "TTL 3 s" in down.why
    fleet.hosts["h0"].host.state = fleet_state_pb2.HOST_STATE_DOWN
    clock.advance(10)  # past TTL + grace, but within the hold: not lost yet
    assert monitor.due() == []
    clock.advance(5)
    [lost] = monitor.due()
    assert (lost.host.id, lost.to) == ("h0", fleet_state_pb2.HOST_STATE_LOST)


def test_a_host_stored_down_is_lost_once_the_hold_ends() -> None:
    clock = FakeClock()
    fleet = _fleet(clock, fleet_state_pb2.HOST_STATE_DOWN)
    monitor = HealthMonitor(fleet, clock, SETTINGS)
    monitor.hold(30)
    clock.advance(29.9)
    assert monitor.due() == []
    clock.advance(0.2)
    [lost] = monitor.due()
    assert lost.to == fleet_state_pb2.HOST_STATE_LOST
