"""One delivery attempt: sign the body, POST it, and say what came back.

urllib from the standard library, on purpose without redirects (a 3xx is an answer, not
a place to resend a signed body to) and without proxies from the environment (the agent
talks to the URL the config names, nothing else).
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ozwald_sdk.webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    read_signing_key,
    signature,
)

REASON_LIMIT: Final = 300
BODY_READ_LIMIT: Final = 4096
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class Attempt:
    """What one POST gave: a status code (0 when none came), how long, and why it failed."""

    status_code: int
    duration_s: float
    error: str
    reason: str = ""
    """The receiver's answer, bounded and sanitised: its JSON `reason`, else its text."""

    @property
    def answered(self) -> bool:
        """The receiver gave an HTTP answer (2xx or not)."""
        return self.status_code != 0

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())


def safe_url(url: str) -> str:
    """The URL without user info, query or fragment: what logs and the delivery log show."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def sanitised(text: str, limit: int = REASON_LIMIT) -> str:
    """`text` on one line, without control characters, at most `limit` characters."""
    flat = " ".join(_CONTROL.sub(" ", text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def reason_from(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace")
    try:
        document = json.loads(text)
    except ValueError:
        return sanitised(text)
    if isinstance(document, dict) and isinstance(document.get("reason"), str):
        return sanitised(document["reason"])
    return sanitised(text)


def post(
    url: str,
    *,
    key_file: str,
    event: str,
    delivery_id: str,
    body: bytes,
    timeout_s: float,
    now: float | None = None,
) -> Attempt:
    """POSTs `body` signed with the key read from `key_file` now; never raises."""
    started = time.monotonic()

    def took() -> float:
        return time.monotonic() - started

    try:
        key = read_signing_key(Path(key_file).read_bytes())
    except (OSError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        return Attempt(0, took(), f"cannot read the signing key file {key_file}: {reason}")
    timestamp = str(int(time.time() if now is None else now))
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "ozwald-agent",
            EVENT_HEADER: event,
            DELIVERY_HEADER: delivery_id,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(key, timestamp, body),
        },
    )
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            answer = response.read(BODY_READ_LIMIT)
            return Attempt(response.status, took(), "", reason_from(answer))
    except urllib.error.HTTPError as e:
        answer = e.read(BODY_READ_LIMIT) if e.fp is not None else b""
        reason = reason_from(answer)
        why = f"answered HTTP {e.code}" + (f": {reason}" if reason else "")
        return Attempt(e.code, took(), why, reason)
    except TimeoutError:
        return Attempt(0, took(), f"no answer within {timeout_s:g} s (timed out)")
    except urllib.error.URLError as e:
        cause = e.reason
        if isinstance(cause, TimeoutError):
            return Attempt(0, took(), f"no answer within {timeout_s:g} s (timed out)")
        text = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause)
        return Attempt(0, took(), f"cannot reach {safe_url(url)}: {text}")
    except (OSError, ValueError) as e:
        return Attempt(0, took(), f"delivery to {safe_url(url)} failed: {e}")
