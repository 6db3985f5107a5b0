"""Which webhook events a service's state changes mean.

The reconciler reports every status it publishes; this turns changes of state into
events (and hands them to the dispatcher, which returns at once):

- READY after being created or restarted by an apply: post-provision;
- READY -> UNHEALTHY or READY -> RESTARTING (it exited): health-changed;
- READY again after such a restart (healing): health-changed;
- -> FAILED: failed;
- -> STOPPED (it left the desired state): post-deprovision.

A service restored or adopted after an agent restart is not provisioned again: no event
for what it already was.
"""

from __future__ import annotations

import threading
from typing import Protocol

from ozwald.agent.v1 import service_status_pb2
from ozwald.common.v1 import service_spec_pb2

from ozwald_agent.webhooks.payload import EventFacts

S = service_status_pb2
ADOPTED_PREFIX = "adopted"
_NOT_READY_AFTER_READY = (S.INSTANCE_STATE_UNHEALTHY, S.INSTANCE_STATE_RESTARTING)


class Notifier(Protocol):
    def notify(self, facts: EventFacts) -> None: ...


class LifecycleEvents:
    """Called by the reconciler with each status it publishes and the spec it follows."""

    def __init__(self, notifier: Notifier) -> None:
        self._notifier = notifier
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str], service_status_pb2.InstanceState.ValueType] = {}
        self._healing: set[tuple[str, str]] = set()
        self._adopting: set[tuple[str, str]] = set()

    def __call__(
        self, status: service_status_pb2.InstanceStatus, spec: service_spec_pb2.ServiceSpec | None
    ) -> None:
        key = (status.realm, status.name)
        with self._lock:
            before = self._last.get(key, S.INSTANCE_STATE_UNSPECIFIED)
            self._last[key] = status.state
            event = self._event(key, before, status)
            if status.state == S.INSTANCE_STATE_STOPPED:
                self._last.pop(key, None)
                self._healing.discard(key)
        if event is None or spec is None or not spec.webhooks or before == status.state:
            return
        self._notifier.notify(
            EventFacts(
                event=event,
                spec=spec,
                state=status.state,
                previous_state=before,
                reason=status.reason,
                generation=status.generation,
                container_id=status.container_id,
                fingerprint=status.fingerprint,
            )
        )

    def _event(
        self,
        key: tuple[str, str],
        before: service_status_pb2.InstanceState.ValueType,
        status: service_status_pb2.InstanceStatus,
    ) -> str | None:
        state = status.state
        if before in (state, S.INSTANCE_STATE_UNSPECIFIED):
            # First sight in this agent's life: a new service is PENDING here; anything
            # else was restored from the state directory and happened before.
            return None
        if state == S.INSTANCE_STATE_STARTING and status.reason.startswith(ADOPTED_PREFIX):
            self._adopting.add(key)
            return None
        if state == S.INSTANCE_STATE_READY:
            if key in self._adopting:
                self._adopting.discard(key)
                return None
            if key in self._healing or before == S.INSTANCE_STATE_UNHEALTHY:
                self._healing.discard(key)
                return "health-changed"
            return "post-provision"
        self._adopting.discard(key)
        if state in _NOT_READY_AFTER_READY and before == S.INSTANCE_STATE_READY:
            self._healing.add(key)
            return "health-changed"
        if state == S.INSTANCE_STATE_FAILED:
            self._healing.discard(key)
            return "failed"
        if state == S.INSTANCE_STATE_STOPPED:
            return "post-deprovision"
        if state == S.INSTANCE_STATE_STOPPING:
            # A spec change or a stop: whatever follows is not healing.
            self._healing.discard(key)
        return None
