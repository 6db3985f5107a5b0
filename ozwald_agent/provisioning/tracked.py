"""What the reconciler remembers about one service between two passes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from google.protobuf.timestamp_pb2 import Timestamp
from ozwald.agent.v1 import service_status_pb2

State: TypeAlias = service_status_pb2.InstanceState.ValueType


@dataclass
class Tracked:
    """The published status plus the probe and backoff bookkeeping behind it.

    Times are monotonic seconds. Only `status` is persisted (as events); the rest is
    rebuilt after an agent restart by probing what runs.
    """

    status: service_status_pb2.InstanceStatus
    started_at: float = 0.0
    next_probe_at: float = 0.0
    # Probes since it started, for the quick start-up schedule.
    startup_probes: int = 0
    # While starting, failed probes count only from here on, once per interval.
    count_failures_from: float = 0.0
    failures: int = 0
    retry_at: float = 0.0
    changed: bool = field(default=False, repr=False)

    @property
    def state(self) -> State:
        return self.status.state

    def move(self, state: State, reason: str) -> None:
        """Enter `state` for `reason`; a no-op when nothing would change."""
        if self.status.state == state and self.status.reason == reason:
            return
        if self.status.state != state:
            stamp = Timestamp()
            stamp.GetCurrentTime()
            self.status.state_since.CopyFrom(stamp)
        self.status.state = state
        self.status.reason = reason
        self.changed = True
