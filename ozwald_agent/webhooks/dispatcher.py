"""Delivering webhook events: pre-events in the caller's thread (they can veto), the
rest on a bounded worker pool with retries, never on the reconciler's thread.

Every attempt is recorded in the delivery log. Pending retries live in memory only: an
agent that stops drops them (recorded as DROPPED when it can still say so).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass
from typing import Final, Protocol

from ozwald.agent.v1 import webhook_delivery_pb2
from ozwald.common.v1 import webhook_pb2

from ozwald_agent.state.webhook_deliveries import duration_of, timestamp_of
from ozwald_agent.webhooks.backoff import MAX_RETRY_SPAN_S, retry_delay
from ozwald_agent.webhooks.payload import EventFacts, body, document
from ozwald_agent.webhooks.sender import Attempt, post, safe_url
from ozwald_sdk.config.effective_webhook import EVENT_CODES, EVENT_NAMES

logger = logging.getLogger(__name__)

W = webhook_pb2
D = webhook_delivery_pb2
WORKERS: Final = 4
QUEUE_LIMIT: Final = 1000
DEFAULT_TIMEOUT_S: Final = 5.0


class DeliveryLog(Protocol):
    def record(self, delivery: webhook_delivery_pb2.WebhookDelivery) -> None: ...


class Sender(Protocol):
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
    ) -> Attempt: ...


@dataclass(frozen=True)
class Veto:
    """A pre-event hook said no (or failed and is fail-closed)."""

    hook: str
    event: str
    service: str
    """realm:name"""
    reason: str
    """What the hook answered, or why it could not answer; bounded, sanitised."""
    failed: bool
    """True when the hook could not answer (fail-closed), False when it answered no."""

    @property
    def message(self) -> str:
        if self.failed:
            return (
                f"webhook '{self.hook}' vetoed {self.event} of {self.service}: it could not "
                f"answer and is fail-closed ({self.reason})"
            )
        return f"webhook '{self.hook}' vetoed {self.event} of {self.service}: {self.reason}"


class WebhookVetoedError(Exception):
    def __init__(self, veto: Veto) -> None:
        self.veto = veto
        super().__init__(veto.message)


def subscribed(hooks: Sequence[webhook_pb2.Webhook], event: str) -> list[webhook_pb2.Webhook]:
    code = EVENT_CODES[event]  # type: ignore[index]
    return [hook for hook in hooks if code in hook.events]


class WebhookDispatcher:
    def __init__(
        self,
        log: DeliveryLog,
        *,
        host: str | None = None,
        sender: Sender = post,
        workers: int = WORKERS,
        queue_limit: int = QUEUE_LIMIT,
        delay: Callable[[int], float] = retry_delay,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._log = log
        self._host = host or socket.gethostname()
        self._send = sender
        self._delay = delay
        self._clock = clock
        self._pool = futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="webhook")
        self._slots = threading.BoundedSemaphore(queue_limit)
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Ends pending retries at once; an attempt in flight finishes within its timeout."""
        self._stopping.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # Pre-events: synchronous, can veto ------------------------------------------------

    def check(self, facts: EventFacts) -> Veto | None:
        """Asks every hook of `facts.spec` subscribed to the (pre-)event, in order; the
        first that says no vetoes and the rest are not asked."""
        for hook in subscribed(facts.spec.webhooks, facts.event):
            delivery_id = uuid.uuid4().hex
            attempt = self._attempt(hook, facts, delivery_id, 1)
            service = f"{facts.spec.realm}:{facts.spec.name}"
            if attempt.ok:
                self._record(
                    hook, facts, delivery_id, 1, attempt, D.WEBHOOK_DELIVERY_OUTCOME_DELIVERED
                )
                continue
            if attempt.answered:
                reason = attempt.reason or f"answered HTTP {attempt.status_code}"
                self._record(
                    hook, facts, delivery_id, 1, attempt, D.WEBHOOK_DELIVERY_OUTCOME_VETOED
                )
                logger.warning(
                    "webhook %s vetoed %s of %s: %s",
                    hook.name,
                    facts.event,
                    service,
                    reason,
                    extra={"hook": hook.name, "service": service},
                )
                return Veto(hook.name, facts.event, service, reason, failed=False)
            if hook.failure_policy == W.WEBHOOK_FAILURE_POLICY_FAIL_OPEN:
                self._record(
                    hook, facts, delivery_id, 1, attempt, D.WEBHOOK_DELIVERY_OUTCOME_FAILED_OPEN
                )
                logger.warning(
                    "webhook %s could not answer %s of %s (%s); fail-open, going ahead",
                    hook.name,
                    facts.event,
                    service,
                    attempt.error,
                    extra={"hook": hook.name, "service": service},
                )
                continue
            self._record(
                hook, facts, delivery_id, 1, attempt, D.WEBHOOK_DELIVERY_OUTCOME_FAILED_CLOSED
            )
            logger.warning(
                "webhook %s could not answer %s of %s (%s); fail-closed, vetoed",
                hook.name,
                facts.event,
                service,
                attempt.error,
                extra={"hook": hook.name, "service": service},
            )
            return Veto(hook.name, facts.event, service, attempt.error, failed=True)
        return None

    # Post-events: asynchronous, retried -----------------------------------------------

    def notify(self, facts: EventFacts) -> None:
        """Queues a delivery to every hook subscribed to the event; returns at once."""
        for hook in subscribed(facts.spec.webhooks, facts.event):
            delivery_id = uuid.uuid4().hex
            if self._stopping.is_set() or not self._slots.acquire(blocking=False):
                why = (
                    "the agent is stopping"
                    if self._stopping.is_set()
                    else ("too many deliveries are pending")
                )
                self._record(
                    hook,
                    facts,
                    delivery_id,
                    0,
                    Attempt(0, 0.0, why),
                    D.WEBHOOK_DELIVERY_OUTCOME_DROPPED,
                )
                continue
            try:
                self._pool.submit(self._deliver, hook, facts, delivery_id)
            except RuntimeError:  # the pool shut down between the check and the submit
                self._slots.release()

    def _deliver(self, hook: webhook_pb2.Webhook, facts: EventFacts, delivery_id: str) -> None:
        try:
            first = self._clock()
            attempts = hook.retries + 1
            for number in range(1, attempts + 1):
                attempt = self._attempt(hook, facts, delivery_id, number)
                if attempt.ok:
                    self._record(
                        hook,
                        facts,
                        delivery_id,
                        number,
                        attempt,
                        D.WEBHOOK_DELIVERY_OUTCOME_DELIVERED,
                    )
                    return
                wait = self._delay(number) if number < attempts else 0.0
                if number == attempts or self._clock() + wait - first > MAX_RETRY_SPAN_S:
                    self._record(
                        hook,
                        facts,
                        delivery_id,
                        number,
                        attempt,
                        D.WEBHOOK_DELIVERY_OUTCOME_GAVE_UP,
                    )
                    logger.warning(
                        "webhook %s: gave up delivering %s after %d attempt(s): %s",
                        hook.name,
                        facts.event,
                        number,
                        attempt.error,
                    )
                    return
                self._record(
                    hook,
                    facts,
                    delivery_id,
                    number,
                    attempt,
                    D.WEBHOOK_DELIVERY_OUTCOME_RETRY_SCHEDULED,
                )
                if self._stopping.wait(wait):
                    return
        except Exception:
            logger.exception("webhook %s: delivery of %s failed", hook.name, facts.event)
        finally:
            self._slots.release()

    # Helpers ----------------------------------------------------------------------

    def _attempt(
        self, hook: webhook_pb2.Webhook, facts: EventFacts, delivery_id: str, number: int
    ) -> Attempt:
        at = self._clock()
        doc = document(
            facts, hook=hook.name, delivery_id=delivery_id, host=self._host, attempt=number, at=at
        )
        timeout = hook.timeout.ToTimedelta().total_seconds() or DEFAULT_TIMEOUT_S
        return self._send(
            hook.url,
            key_file=hook.signing_key_file,
            event=facts.event,
            delivery_id=delivery_id,
            body=body(doc),
            timeout_s=timeout,
            now=at,
        )

    def _record(  # noqa: PLR0917 - one call per outcome, all six always given
        self,
        hook: webhook_pb2.Webhook,
        facts: EventFacts,
        delivery_id: str,
        number: int,
        attempt: Attempt,
        outcome: webhook_delivery_pb2.WebhookDeliveryOutcome.ValueType,
    ) -> None:
        try:
            self._log.record(
                D.WebhookDelivery(
                    delivery_id=delivery_id,
                    hook=hook.name,
                    event=EVENT_CODES[facts.event],  # type: ignore[index]
                    realm=facts.spec.realm,
                    service=facts.spec.name,
                    attempt=number,
                    attempted_at=timestamp_of(self._clock() - attempt.duration_s),
                    status_code=attempt.status_code,
                    duration=duration_of(attempt.duration_s),
                    error=attempt.error,
                    outcome=outcome,
                    url=safe_url(hook.url),
                )
            )
        except Exception:
            logger.exception("could not record a webhook delivery of %s", hook.name)


__all__ = ["EVENT_NAMES", "Veto", "WebhookDispatcher", "WebhookVetoedError", "subscribed"]
