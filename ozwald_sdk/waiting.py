"""Waiting for services to become ready, or to stop, after an apply or a stop.

    response = client.apply_services(specs)
    statuses = wait_until_ready(
        client,
        expected_fingerprints(response.plan),
        response.event_sequence,
        timeout=600,
        on_event=lambda status: print(status.name, status.state),
    )

The agent converges in the background and numbers every state change. Some of them may
happen before the wait starts, and a service the update keeps produces none at all, so
a wait combines two views: a `ListServices` snapshot (where everything is now) and a
`WatchServices` stream from the sequence the apply returned (everything the update
caused, replayed first, then live). A status in the snapshot only counts as the
outcome of the update when it is about the new effective spec (its fingerprint) or has
changed since the update began: a service that had failed before is retried by the
agent on every apply, so its old FAILED status is not a verdict.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TypeAlias

from ozwald.agent.v1 import plan_pb2, service_status_pb2

from ozwald_sdk.agent_client import AgentClient
from ozwald_sdk.errors import DeadlineExceededError, ServiceFailedError

ServiceKey: TypeAlias = tuple[str, str]
"""(realm, name)."""

OnStatus: TypeAlias = Callable[[service_status_pb2.InstanceStatus], None]

S = service_status_pb2
READY = S.INSTANCE_STATE_READY
FAILED = S.INSTANCE_STATE_FAILED
STOPPED = S.INSTANCE_STATE_STOPPED
LOG_LINES_IN_ERROR = 10
# Pause before reopening a watch that the agent ended cleanly (it may be restarting).
_REOPEN_PAUSE_S = 0.5


class ServiceStartFailedError(ServiceFailedError):
    """A service failed (or was stopped) while the client waited for it to be ready.

    `status` is the instance's status at that moment, its last log lines included;
    `statuses` is the latest status known of every service waited for.
    """

    def __init__(
        self,
        message: str,
        *,
        remedy: str,
        status: S.InstanceStatus,
        statuses: Mapping[ServiceKey, S.InstanceStatus],
    ) -> None:
        super().__init__(message, remedy=remedy)
        self.status = status
        self.statuses = dict(statuses)


class WaitTimedOutError(DeadlineExceededError):
    """The services did not all reach the state waited for in time.

    `pending` maps each service that had not to its latest status, or None when the
    agent had reported nothing about it.
    """

    def __init__(
        self,
        message: str,
        *,
        remedy: str,
        pending: Mapping[ServiceKey, S.InstanceStatus | None],
    ) -> None:
        super().__init__(message, remedy=remedy)
        self.pending = dict(pending)


def key_of(status: S.InstanceStatus) -> ServiceKey:
    return status.realm, status.name


def label(key: ServiceKey) -> str:
    """`realm:name`, as people and `ozwald logs` write a service."""
    return f"{key[0]}:{key[1]}"


def expected_fingerprints(plan: plan_pb2.Plan) -> dict[ServiceKey, str]:
    """The dynamic services an admitted plan runs, each with the fingerprint of the spec
    it will run: what `wait_until_ready` should wait for after applying it."""
    return {
        (action.realm, action.name): action.fingerprint
        for action in plan.actions
        if action.kind != plan_pb2.ACTION_KIND_STOP and not action.persistent
    }


def wait_until_ready(
    client: AgentClient,
    keys: Iterable[ServiceKey] | Mapping[ServiceKey, str],
    after_sequence: int,
    timeout: float,
    *,
    on_event: OnStatus | None = None,
    generation: int = 0,
) -> dict[ServiceKey, S.InstanceStatus]:
    """Block until every service in `keys` is READY; return their statuses.

    `keys` are (realm, name) pairs, or a mapping of them to the fingerprint each must
    run (`expected_fingerprints(plan)`): with fingerprints, an instance that still runs
    the spec from before the update does not count as ready, nor as failed. Give the
    mapping whenever an update may restart a service. `after_sequence` is the
    `event_sequence` of the ApplyServicesResponse (the last event before the update), and
    `generation` its `generation`: a FAILED status of an older generation (from a pass that
    began before the update and is retried after it) is not taken as the update's failure.

    `on_event` gets each new status of a service waited for, once per change of state
    or reason, in order. Raises ServiceStartFailedError (exit code 12) as soon as one
    fails or is stopped, and WaitTimedOutError (a DeadlineExceededError, exit code 6)
    when `timeout` seconds pass first. Calls the agent with the client's timeout.
    """
    fingerprints = dict(keys) if isinstance(keys, Mapping) else dict.fromkeys(keys, "")
    wait = _Wait(client, tuple(fingerprints), after_sequence, timeout, on_event)

    def ready(key: ServiceKey) -> bool:
        status = wait.latest.get(key)
        if status is None:
            return False
        current = not fingerprints[key] or status.fingerprint == fingerprints[key]
        final = status.state in (FAILED, STOPPED) and status.generation >= generation
        if key in wait.fresh and current and final:
            _raise_failed(status, wait.latest)
        return current and status.state == READY

    wait.run(ready, "ready")
    return {key: wait.latest[key] for key in fingerprints}


def wait_until_stopped(
    client: AgentClient,
    keys: Iterable[ServiceKey],
    after_sequence: int,
    timeout: float,
    *,
    on_event: OnStatus | None = None,
) -> dict[ServiceKey, S.InstanceStatus | None]:
    """Block until every service in `keys` is STOPPED or gone; return their last statuses.

    `after_sequence` is the `event_sequence` of the StopServicesResponse. A service the
    agent no longer lists counts as stopped (None in the result: it had stopped before
    the wait began, or never ran). `on_event` and the timeout are as for
    wait_until_ready.
    """
    wanted = list(dict.fromkeys(keys))
    wait = _Wait(client, tuple(wanted), after_sequence, timeout, on_event)

    def stopped(key: ServiceKey) -> bool:
        return key not in wait.latest or wait.latest[key].state == STOPPED

    wait.run(stopped, "stopped")
    return {key: wait.latest.get(key) for key in wanted}


@dataclasses.dataclass
class _Wait:
    """The bookkeeping of one wait: the latest status of each service, and which of them
    changed after `after_sequence` (the others' statuses predate the update)."""

    client: AgentClient
    keys: tuple[ServiceKey, ...]
    after_sequence: int
    timeout: float
    on_event: OnStatus | None
    latest: dict[ServiceKey, S.InstanceStatus] = dataclasses.field(default_factory=dict)
    fresh: set[ServiceKey] = dataclasses.field(default_factory=set)
    _told: dict[ServiceKey, tuple[int, str]] = dataclasses.field(default_factory=dict)

    def run(self, settled: Callable[[ServiceKey], bool], goal: str) -> None:
        """Until `settled` holds for every key; it raises when one can never settle."""
        wanted = set(self.keys)

        def verdict() -> bool:
            # Every key, not up to the first unsettled one: a failure anywhere ends it.
            return all([settled(key) for key in self.keys])

        deadline = time.monotonic() + self.timeout
        snapshot = self.client.list_services(timeout=self._left(deadline))
        for status in snapshot.instances:
            if key_of(status) in wanted:
                self.latest[key_of(status)] = status
        listed = set(self.latest)
        caught_up = snapshot.event_sequence
        # When something happened since the update began, the snapshot alone cannot
        # tell which statuses predate it: replay up to the snapshot first.
        if self.after_sequence >= caught_up and verdict():
            return
        cursor = self.after_sequence
        while (left := deadline - time.monotonic()) > 0:
            events = self.client.watch_services(after_sequence=cursor, timeout=left)
            with contextlib.closing(events):
                for event in events:
                    cursor = max(cursor, event.sequence)
                    key = key_of(event.status)
                    if key in wanted:
                        self.fresh.add(key)
                        # The snapshot already reflects the events up to its sequence;
                        # of those, only a listed service's are older than what it shows
                        # (one that stopped is no longer listed).
                        if event.sequence > caught_up or key not in listed:
                            self.latest[key] = event.status
                        self._tell(event.status)
                    if cursor >= caught_up and verdict():
                        return
            # The agent ended the stream (it may be restarting): follow on from the cursor.
            if deadline - time.monotonic() <= _REOPEN_PAUSE_S:
                break
            time.sleep(_REOPEN_PAUSE_S)
        self._time_out(goal, settled)

    def _tell(self, status: S.InstanceStatus) -> None:
        if self.on_event is None:
            return
        key = key_of(status)
        told = (status.state, status.reason)
        if self._told.get(key) != told:
            self._told[key] = told
            self.on_event(status)

    def _left(self, deadline: float) -> float:
        return max(min(self.client.timeout, deadline - time.monotonic()), 0.001)

    def _time_out(self, goal: str, settled: Callable[[ServiceKey], bool]) -> None:
        pending = {key: self.latest.get(key) for key in self.keys if not settled(key)}
        listed = ", ".join(_describe(key, status) for key, status in pending.items())
        raise WaitTimedOutError(
            f"not every service was {goal} within {self.timeout:g} s: {listed}",
            remedy=(
                "wait longer (--timeout-ready), or see what they do with `ozwald status` "
                "and `ozwald logs SERVICE`"
                if goal == "ready"
                else "wait longer (--timeout-stopped), or see what they do with `ozwald status`"
            ),
            pending=pending,
        )


def _describe(key: ServiceKey, status: S.InstanceStatus | None) -> str:
    if status is None:
        return f"{label(key)} (no status reported yet)"
    state = S.InstanceState.Name(status.state).removeprefix("INSTANCE_STATE_")
    return f"{label(key)} {state}" + (f" ({status.reason})" if status.reason else "")


def _raise_failed(
    status: S.InstanceStatus, statuses: Mapping[ServiceKey, S.InstanceStatus]
) -> None:
    name = label(key_of(status))
    if status.state == STOPPED:
        raise ServiceStartFailedError(
            f"{name} was stopped while waiting for it to be ready: {status.reason}",
            remedy="another update or `ozwald down` removed it; run the update again",
            status=status,
            statuses=statuses,
        )
    message = f"{name} failed: {status.reason or 'no reason given'}"
    lines = list(status.last_log_lines)[-LOG_LINES_IN_ERROR:]
    if lines:
        message += "; its last log lines:\n" + "\n".join(f"    {line}" for line in lines)
    raise ServiceStartFailedError(
        message,
        remedy=f"fix the cause, then update again; `ozwald logs {name}` shows the log "
        "(the lines kept, once its container is gone)",
        status=status,
        statuses=statuses,
    )
