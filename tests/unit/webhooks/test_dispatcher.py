"""Veto logic (fail-open / fail-closed), retries, the delivery log store, lifecycle events.

The sender is a scripted function with the real sender's signature; deliveries land in a
real SQLite delivery log."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from google.protobuf.duration_pb2 import Duration
from ozwald.agent.v1 import service_status_pb2 as S
from ozwald.agent.v1 import webhook_delivery_pb2 as W
from ozwald.common.v1 import service_spec_pb2, webhook_pb2

from ozwald_agent.state.webhook_deliveries import WebhookDeliveryStore
from ozwald_agent.webhooks.dispatcher import WebhookDispatcher
from ozwald_agent.webhooks.lifecycle import LifecycleEvents
from ozwald_agent.webhooks.payload import EventFacts
from ozwald_agent.webhooks.sender import Attempt

OPEN = webhook_pb2.WEBHOOK_FAILURE_POLICY_FAIL_OPEN
CLOSED = webhook_pb2.WEBHOOK_FAILURE_POLICY_FAIL_CLOSED
UNSET = webhook_pb2.WEBHOOK_FAILURE_POLICY_UNSPECIFIED
PRE = webhook_pb2.WEBHOOK_EVENT_PRE_PROVISION
POST = webhook_pb2.WEBHOOK_EVENT_POST_PROVISION


def hook(name: str, *events: int, policy: int = CLOSED, retries: int = 0) -> webhook_pb2.Webhook:
    return webhook_pb2.Webhook(
        name=name,
        url=f"http://127.0.0.1:1/{name}",
        events=list(events),  # type: ignore[arg-type]
        timeout=Duration(seconds=1),
        retries=retries,
        failure_policy=policy,  # type: ignore[arg-type]
        signing_key_file="/nonexistent",
    )


def facts(event: str, *hooks: webhook_pb2.Webhook) -> EventFacts:
    spec = service_spec_pb2.ServiceSpec(realm="r", name="web", webhooks=hooks)
    return EventFacts(
        event,
        spec,
        S.INSTANCE_STATE_UNSPECIFIED,
        S.INSTANCE_STATE_UNSPECIFIED,
        "start requested",
        1,
        "",
        action="start",
    )


class ScriptedSender:
    def __init__(self, answers: dict[str, list[Attempt]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, str, float]] = []
        self.lock = threading.Lock()

    def __call__(
        self,
        url: str,
        *,
        key_file: str,
        event: str,
        delivery_id: str,
        body: bytes,
        timeout_s: float,
        now: float | None = None,
    ) -> Attempt:
        name = url.rsplit("/", 1)[1]
        with self.lock:
            self.calls.append((name, delivery_id, time.monotonic()))
            script = self.answers[name]
            return script.pop(0) if len(script) > 1 else script[0]


@pytest.fixture
def log(tmp_path: Path) -> WebhookDeliveryStore:
    return WebhookDeliveryStore(tmp_path / "agent.db")


def dispatcher(
    log: WebhookDeliveryStore,
    sender: ScriptedSender,
    delay: Callable[[int], float] = lambda n: 0.01,
) -> WebhookDispatcher:
    return WebhookDispatcher(log, host="h", sender=sender, delay=delay)


OK = Attempt(204, 0.01, "")
NO = Attempt(403, 0.01, "answered HTTP 403: frozen", "frozen")
DOWN = Attempt(0, 0.01, "cannot reach http://127.0.0.1:1/x: Connection refused")


@pytest.mark.parametrize(
    ("answer", "policy", "vetoed", "outcome"),
    [
        (OK, CLOSED, False, W.WEBHOOK_DELIVERY_OUTCOME_DELIVERED),
        (NO, OPEN, True, W.WEBHOOK_DELIVERY_OUTCOME_VETOED),  # a "no" is a no, whatever the policy
        (NO, CLOSED, True, W.WEBHOOK_DELIVERY_OUTCOME_VETOED),
        (DOWN, OPEN, False, W.WEBHOOK_DELIVERY_OUTCOME_FAILED_OPEN),
        (DOWN, CLOSED, True, W.WEBHOOK_DELIVERY_OUTCOME_FAILED_CLOSED),
        (DOWN, UNSET, True, W.WEBHOOK_DELIVERY_OUTCOME_FAILED_CLOSED),  # the default is closed
    ],
)
def test_pre_hooks_veto_per_answer_and_policy(
    log: WebhookDeliveryStore, answer: Attempt, policy: int, vetoed: bool, outcome: int
) -> None:
    sender = ScriptedSender({"gate": [answer]})
    veto = dispatcher(log, sender).check(facts("pre-provision", hook("gate", PRE, policy=policy)))
    assert (veto is not None) == vetoed
    if veto is not None:
        assert veto.hook == "gate" and veto.service == "r:web"
        assert veto.reason == ("frozen" if answer is NO else answer.error)
        assert veto.failed == (answer is DOWN)
    (logged,) = log.list()
    assert logged.outcome == outcome
    assert logged.attempt == 1 and logged.hook == "gate" and logged.event == PRE


def test_pre_hooks_are_asked_in_order_and_stop_at_the_first_no(log: WebhookDeliveryStore) -> None:
    sender = ScriptedSender({"a": [OK], "b": [NO], "c": [OK]})
    veto = dispatcher(log, sender).check(
        facts("pre-provision", hook("a", PRE), hook("b", PRE), hook("c", PRE), hook("d", POST))
    )
    assert veto is not None and veto.hook == "b"
    assert [c[0] for c in sender.calls] == ["a", "b"]


def wait_until(done: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_post_events_retry_then_deliver_under_one_id(log: WebhookDeliveryStore) -> None:
    sender = ScriptedSender({"audit": [Attempt(500, 0.0, "HTTP 500"), DOWN, OK]})
    waits: list[int] = []
    d = dispatcher(log, sender, delay=lambda n: waits.append(n) or 0.01)  # type: ignore[func-returns-value]
    d.notify(facts("post-provision", hook("audit", POST, retries=5)))
    wait_until(lambda: len(log.list()) == 3)
    assert [(x.attempt, x.outcome) for x in reversed(log.list())] == [
        (1, W.WEBHOOK_DELIVERY_OUTCOME_RETRY_SCHEDULED),
        (2, W.WEBHOOK_DELIVERY_OUTCOME_RETRY_SCHEDULED),
        (3, W.WEBHOOK_DELIVERY_OUTCOME_DELIVERED),
    ]
    assert len({c[1] for c in sender.calls}) == 1
    assert waits == [1, 2]


def test_post_events_give_up_after_their_retries(log: WebhookDeliveryStore) -> None:
    sender = ScriptedSender({"audit": [DOWN]})
    dispatcher(log, sender).notify(facts("post-provision", hook("audit", POST, retries=2)))
    wait_until(lambda: any(x.outcome == W.WEBHOOK_DELIVERY_OUTCOME_GAVE_UP for x in log.list()))
    assert [x.attempt for x in reversed(log.list())] == [1, 2, 3]


def test_notify_never_waits_for_the_receiver(log: WebhookDeliveryStore) -> None:
    release = threading.Event()

    def slow(url: str, **_: object) -> Attempt:
        release.wait(5)
        return OK

    d = WebhookDispatcher(log, host="h", sender=slow)
    started = time.monotonic()
    for _ in range(10):
        d.notify(facts("post-provision", hook("audit", POST)))
    assert time.monotonic() - started < 0.5
    release.set()
    wait_until(lambda: len(log.list()) == 10)
    d.stop()


def test_a_full_queue_drops_and_records_it(log: WebhookDeliveryStore) -> None:
    release = threading.Event()

    def stuck(url: str, **_: object) -> Attempt:
        release.wait(5)
        return OK

    d = WebhookDispatcher(log, host="h", sender=stuck, workers=1, queue_limit=2)
    for _ in range(3):
        d.notify(facts("post-provision", hook("audit", POST)))
    (dropped,) = log.list()
    assert dropped.outcome == W.WEBHOOK_DELIVERY_OUTCOME_DROPPED
    assert "too many" in dropped.error
    release.set()
    d.stop()


def test_the_delivery_log_filters_limits_and_prunes(tmp_path: Path) -> None:
    store = WebhookDeliveryStore(tmp_path / "agent.db", retention=5)
    for i in range(8):
        store.record(W.WebhookDelivery(delivery_id=str(i), realm="r", service=f"s{i % 2}"))
    assert [d.delivery_id for d in store.list()] == ["7", "6", "5", "4", "3"]
    assert [d.delivery_id for d in store.list(service="s1", limit=2)] == ["7", "5"]
    assert store.list(realm="other") == []
    store.close()
    store.record(W.WebhookDelivery(delivery_id="late"))  # after close: ignored, no error


class Collected:
    def __init__(self) -> None:
        self.events: list[tuple[str, int, int]] = []

    def notify(self, facts: EventFacts) -> None:
        self.events.append((facts.event, facts.previous_state, facts.state))


def status(state: int, reason: str = "") -> S.InstanceStatus:
    return S.InstanceStatus(realm="r", name="web", state=state, reason=reason)  # type: ignore[arg-type]


SPEC = service_spec_pb2.ServiceSpec(realm="r", name="web", webhooks=[hook("h", POST)])


def play(*states: tuple[int, str]) -> list[str]:
    collected = Collected()
    events = LifecycleEvents(collected)
    for state, reason in states:
        events(status(state, reason), SPEC)
    return [e[0] for e in collected.events]


def test_lifecycle_events_follow_state_changes() -> None:
    start = [
        (S.INSTANCE_STATE_PENDING, "new"),
        (S.INSTANCE_STATE_CREATING, ""),
        (S.INSTANCE_STATE_STARTING, ""),
        (S.INSTANCE_STATE_READY, ""),
    ]
    assert play(*start) == ["post-provision"]
    crash_and_heal = [
        (S.INSTANCE_STATE_RESTARTING, "exited"),
        (S.INSTANCE_STATE_CREATING, ""),
        (S.INSTANCE_STATE_STARTING, ""),
        (S.INSTANCE_STATE_READY, ""),
    ]
    assert play(*start, *crash_and_heal) == ["post-provision", "health-changed", "health-changed"]
    assert play(
        *start,
        (S.INSTANCE_STATE_UNHEALTHY, ""),
        (S.INSTANCE_STATE_RESTARTING, ""),
        (S.INSTANCE_STATE_FAILED, "gave up"),
    ) == ["post-provision", "health-changed", "failed"]
    assert play(*start, (S.INSTANCE_STATE_STOPPING, ""), (S.INSTANCE_STATE_STOPPED, "")) == [
        "post-provision",
        "post-deprovision",
    ]
    spec_change = [
        (S.INSTANCE_STATE_STOPPING, ""),
        (S.INSTANCE_STATE_PENDING, "changed"),
        (S.INSTANCE_STATE_STARTING, ""),
        (S.INSTANCE_STATE_READY, ""),
    ]
    assert play(*start, *spec_change) == ["post-provision", "post-provision"]


def test_what_an_agent_restart_restores_or_adopts_is_not_announced_again() -> None:
    assert play((S.INSTANCE_STATE_READY, "health check passed")) == []
    assert (
        play(
            (S.INSTANCE_STATE_PENDING, "x"),
            (S.INSTANCE_STATE_STARTING, "adopted its running container; probing"),
            (S.INSTANCE_STATE_READY, ""),
        )
        == []
    )
