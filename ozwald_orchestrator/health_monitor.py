"""Failure detection: a host whose agent is silent for the TTL is DOWN; DOWN for the
reschedule grace, it is LOST.

Any message from the agent counts as a sign of life, not only heartbeats. A host that
speaks again while DOWN is READY again and nothing of it moved: a short partition or
an agent restart costs no container. Only LOST moves instances (see fleet.Fleet).
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
        # No host is declared lost before this moment (monotonic): see `hold_losses`.
        self._no_loss_before = 0.0

    def hold_losses(self, seconds: float) -> None:
        """Declare no host lost for `seconds` from now. A restarted orchestrator knows its
        hosts only from the store; their agents need a moment (their reconnect backoff)
        to find it again, and moving their instances meanwhile would be pure churn."""
        self._no_loss_before = self._clock.monotonic() + seconds

    def due(self) -> list[Transition]:
        now = self._clock.monotonic()
        ttl = self._settings.heartbeat_ttl_s
        lost_after = ttl + self._settings.reschedule_grace_s
        transitions: list[Transition] = []
        for host in self._state.hosts.values():
            state = host.host.state
            if state == READY:
                silent = now - host.last_seen
                if silent > ttl:
                    transitions.append(
                        Transition(host, DOWN, f"no message for {silent:.1f} s (TTL {ttl:g} s)")
                    )
            elif state == DOWN and now >= self._no_loss_before:
                silent = now - host.last_seen
                if silent > lost_after:
                    transitions.append(
                        Transition(
                            host,
                            fleet_state_pb2.HOST_STATE_LOST,
                            f"down for {silent - ttl:.1f} s, past the reschedule grace of "
                            f"{self._settings.reschedule_grace_s:g} s",
                        )
                    )
        return transitions
