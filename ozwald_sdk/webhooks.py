"""Webhook signatures: how the agent signs a delivery and how a receiver verifies it.

Every delivery carries

    X-Ozwald-Timestamp: 1767225600            (Unix seconds when it was signed)
    X-Ozwald-Signature: sha256=<hex>         (HMAC-SHA256 over "<timestamp>.<body>")

with the key read from the hook's `signing_key_file` (its bytes, surrounding whitespace
removed). A receiver recomputes the HMAC over the raw body it received, compares in
constant time, and refuses timestamps outside its replay window (default 5 minutes,
either side, for clock skew). Within the window, `X-Ozwald-Delivery` identifies a
delivery: a receiver that must never act twice remembers the ids it has seen for the
window's length (a retry of a post-event reuses the id, with a new timestamp).

    from ozwald_sdk.webhooks import verify_signature, WebhookSignatureError

    try:
        verify_signature(key, headers["X-Ozwald-Timestamp"],
                         headers["X-Ozwald-Signature"], body)
    except WebhookSignatureError as e:
        return 401, str(e)
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Final

SCHEMA: Final = "ozwald.webhook.v1"
EVENT_HEADER: Final = "X-Ozwald-Event"
DELIVERY_HEADER: Final = "X-Ozwald-Delivery"
TIMESTAMP_HEADER: Final = "X-Ozwald-Timestamp"
SIGNATURE_HEADER: Final = "X-Ozwald-Signature"
SIGNATURE_PREFIX: Final = "sha256="
DEFAULT_REPLAY_WINDOW_S: Final = 300.0


class WebhookSignatureError(ValueError):
    """A delivery's signature or timestamp does not verify; refuse the delivery."""


def read_signing_key(raw: bytes) -> bytes:
    """The key as the agent uses it: the file's bytes without surrounding whitespace."""
    key = raw.strip()
    if not key:
        raise ValueError("the signing key file is empty")
    return key


def signature(key: bytes, timestamp: str | int, body: bytes) -> str:
    """The X-Ozwald-Signature value for `body` signed at `timestamp`."""
    message = str(timestamp).encode() + b"." + body
    return SIGNATURE_PREFIX + hmac.new(key, message, hashlib.sha256).hexdigest()


def verify_signature(
    key: bytes,
    timestamp: str | None,
    signature_header: str | None,
    body: bytes,
    *,
    replay_window_s: float = DEFAULT_REPLAY_WINDOW_S,
    now: float | None = None,
) -> int:
    """Checks a delivery; returns its timestamp, or raises WebhookSignatureError.

    `body` must be the raw bytes received, before any JSON parsing.
    """
    if not timestamp or not signature_header:
        raise WebhookSignatureError(
            f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER}: not an Ozwald delivery"
        )
    try:
        signed_at = int(timestamp)
    except ValueError:
        raise WebhookSignatureError(f"{TIMESTAMP_HEADER} is not a whole number") from None
    expected = signature(key, timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature_header.strip().encode()):
        raise WebhookSignatureError("the signature does not match the body and timestamp")
    skew = (time.time() if now is None else now) - signed_at
    if abs(skew) > replay_window_s:
        raise WebhookSignatureError(
            f"signed {skew:+.0f} s from now, outside the {replay_window_s:g} s replay window"
        )
    return signed_at
