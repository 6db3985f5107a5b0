"""Failure detection: a host whose agent is silent for the TTL is DOWN; DOWN for the
reschedule grace, it is LOST.

Any message from the agent counts as a sign of life, not only heartbeats. A host that
speaks again while DOWN is READY again and nothing of it moved: a short partition or
an agent restart costs no container. Only LOST moves instances (see fleet.Fleet).
After an orchestrator restart, the restart hold (`HealthMonitor.hold`) gives agents
time to reconnect before silence counts.
The check is a scan of the hosts' last-seen times, a few microseconds per host, run a
few times per TTL.
"""

from __future__ import annotations

from dataclasses import dataclass

from ozwald.orchestrator.v1 import fleet_state_pb2

from ozwald_orchestrator.clock import Clock
from ozwald_orchestrator.state import DOWN, READY, FleetState, HostRecord


@dataclass(frozen=True)
class HealthSettings:
    """Heartbeat timing (seconds)."""

    heartbeat_interval_s: float = 1.0
    heartbeat_ttl_s: float = 3.0
    reschedule_grace_s: float = 5.0

    def check_interval_s(self) -> float:
        """How often to look: often enough that detection lags the TTL by little."""
        return max(0.05, min(self.heartbeat_interval_s, self.heartbeat_ttl_s / 10))


@dataclass(frozen=True)
class Transition:
    """A host to move to `to`, and why, in words."""

    host: HostRecord
    to: fleet_state_pb2.HostState.ValueType
    why: str


class HealthMonitor:
    """Finds the hosts whose state the passing of time changes."""

    def __init__(self, state: FleetState, clock: Clock, settings: HealthSettings) -> None:
        self._state = state
        self._clock = clock
        self._settings = settings
        # No host is declared lost before this moment (monotonic): see `hold`.
        self._hold_until = 0.0
        self._hold_s = 0.0
        # READY hosts known only from the store, not heard from since the hold began.
        self._unheard: set[str] = set()

    def hold(self, seconds: float) -> None:
        """After a restart: for `seconds` from now, declare no host lost, and no host
        that has not spoken since down. A restarted orchestrator knows its hosts only
        from the store; their agents need a moment (their reconnect backoff) to find it
        again. Calling them down would show their instances HOST_DOWN while they run, and
        moving their instances would be pure churn. A host still unheard when the hold
        ends is judged as if its last message came then."""
        now = self._clock.monotonic()
        self._hold_until = now + seconds
        self._hold_s = seconds
        self._unheard = {h for h, r in self._state.hosts.items() if r.state == READY}

    def heard(self, host_id: str) -> None:
        """A message from the host: from now on its own last message times it. O(1)."""
        if self._unheard:
            self._unheard.discard(host_id)

    def due(self) -> list[Transition]:
        now = self._clock.monotonic()
        ttl = self._settings.heartbeat_ttl_s
        lost_after = ttl + self._settings.reschedule_grace_s
        held = now < self._hold_until
        transitions: list[Transition] = []
        for host in self._state.hosts.values():
            state = host.host.state
            last_seen = host.last_seen
            unheard = host.id in self._unheard
            if unheard:
                if held:
                    continue
                last_seen = max(last_seen, self._hold_until)
            silent = now - last_seen
            if state == READY:
                if silent > ttl:
                    why = (
                        f"not heard from since the orchestrator restarted ({self._hold_s:g} s "
                        f"restart grace, then TTL {ttl:g} s)"
                        if unheard
                        else f"no message for {silent:.1f} s (TTL {ttl:g} s)"
                    )
                    transitions.append(Transition(host, DOWN, why))
            elif state == DOWN and not held and silent > lost_after:
                transitions.append(
                    Transition(
                        host,
                        fleet_state_pb2.HOST_STATE_LOST,
                        f"down for {silent - ttl:.1f} s, past the reschedule grace of "
                        f"{self._settings.reschedule_grace_s:g} s",
                    )
                )
        return transitions
