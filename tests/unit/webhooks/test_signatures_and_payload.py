"""Signing and verification (ozwald_sdk.webhooks), the payload document, the backoff."""

from __future__ import annotations

import json

import pytest
from ozwald.agent.v1 import service_status_pb2 as S
from ozwald.common.v1 import service_spec_pb2

from ozwald_agent.webhooks.backoff import retry_delay
from ozwald_agent.webhooks.payload import EventFacts, body, document
from ozwald_agent.webhooks.sender import reason_from, safe_url, sanitised
from ozwald_sdk.webhooks import (
    SCHEMA,
    WebhookSignatureError,
    read_signing_key,
    signature,
    verify_signature,
)

KEY = b"k3y"
BODY = b'{"event":"post-provision"}'
NOW = 1_767_225_600


def test_a_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    # Computed independently: printf '1767225600.{"event":"post-provision"}' |
    # openssl dgst -sha256 -hmac k3y
    import hashlib
    import hmac

    expected = hmac.new(KEY, b"1767225600." + BODY, hashlib.sha256).hexdigest()
    assert signature(KEY, NOW, BODY) == f"sha256={expected}"
    assert verify_signature(KEY, str(NOW), f"sha256={expected}", BODY, now=NOW + 10) == NOW


@pytest.mark.parametrize(
    ("key", "timestamp", "body", "message"),
    [
        (b"other", str(NOW), BODY, "does not match"),
        (KEY, str(NOW + 1), BODY, "does not match"),
        (KEY, str(NOW), BODY + b" ", "does not match"),
        (KEY, "soon", BODY, "not a whole number"),
    ],
)
def test_anything_changed_fails_verification(
    key: bytes, timestamp: str, body: bytes, message: str
) -> None:
    with pytest.raises(WebhookSignatureError, match=message):
        verify_signature(key, timestamp, signature(KEY, NOW, BODY), body, now=NOW)


def test_the_replay_window_refuses_old_and_future_deliveries() -> None:
    signed = signature(KEY, NOW, BODY)
    assert verify_signature(KEY, str(NOW), signed, BODY, now=NOW + 300) == NOW
    with pytest.raises(WebhookSignatureError, match="outside the 300 s replay window"):
        verify_signature(KEY, str(NOW), signed, BODY, now=NOW + 301)
    with pytest.raises(WebhookSignatureError, match="replay window"):
        verify_signature(KEY, str(NOW), signed, BODY, now=NOW - 61, replay_window_s=60)


def test_missing_headers_are_refused() -> None:
    with pytest.raises(WebhookSignatureError, match="missing"):
        verify_signature(KEY, None, "sha256=00", BODY)


def test_the_key_file_is_read_without_surrounding_whitespace() -> None:
    assert read_signing_key(b"  s3cret\n") == b"s3cret"
    with pytest.raises(ValueError, match="empty"):
        read_signing_key(b"\n\n")


def test_the_payload_is_the_documented_v1_schema() -> None:
    spec = service_spec_pb2.ServiceSpec(realm="prod", name="embed", variety="cpu", image="img")
    facts = EventFacts(
        event="post-provision",
        spec=spec,
        state=S.INSTANCE_STATE_READY,
        previous_state=S.INSTANCE_STATE_STARTING,
        reason="health check passed",
        generation=7,
        container_id="abc123",
        fingerprint="f" * 64,
    )
    doc = document(facts, hook="audit", delivery_id="d1", host="gpu-1", attempt=2, at=NOW)
    assert doc == {
        "schema": SCHEMA,
        "event": "post-provision",
        "delivery_id": "d1",
        "attempt": 2,
        "timestamp": "2026-01-01T00:00:00.000Z",
        "hook": "audit",
        "host": "gpu-1",
        "realm": "prod",
        "service": "embed",
        "variety": "cpu",
        "profile": None,
        "action": None,
        "state": "READY",
        "previous_state": "STARTING",
        "reason": "health check passed",
        "generation": 7,
        "container_id": "abc123",
        "fingerprint": "f" * 64,
        "image": "img",
    }
    assert json.loads(body(doc)) == doc
    assert SCHEMA == "ozwald.webhook.v1"


def test_backoff_gaps_grow_and_are_capped() -> None:
    low = [retry_delay(n, rand=lambda: 0.0) for n in range(1, 10)]
    high = [retry_delay(n, rand=lambda: 1.0) for n in range(1, 10)]
    assert low[:4] == [0.5, 1.0, 2.0, 4.0]
    assert high[:4] == [1.0, 2.0, 4.0, 8.0]
    # Below the cap, whatever the jitter, a gap is never shorter than the longest the one
    # before could be.
    assert all(high[i] <= low[i + 1] for i in range(len(low) - 1) if 2 * high[i] <= 60)
    assert max(high) == 60.0


def test_a_receivers_reason_is_bounded_and_on_one_line() -> None:
    assert reason_from(b'{"reason": "freeze\\n\\u001b[31mnow"}') == "freeze [31mnow"
    assert reason_from(b"plain\r\ntext") == "plain text"
    long = sanitised("x" * 1000)
    assert len(long) == 300 and long.endswith("…")


def test_urls_in_logs_lose_credentials_and_queries() -> None:
    assert safe_url("https://u:p@hooks.example:8443/a?token=t#f") == "https://hooks.example:8443/a"
