"""How a webhook is declared in ozwald.yml: once per realm, by name; services subscribe.

The signing key is named by a file path, never written in the config: the agent reads
the file itself at each delivery, so the key's value never travels in a ServiceSpec,
a log line or CLI output.
"""

from __future__ import annotations

import urllib.parse
from typing import Annotated, Final, Literal, get_args

from pydantic import AfterValidator, Field

from ozwald_sdk.config.model_service import StrictModel
from ozwald_sdk.config.problems import expected
from ozwald_sdk.config.units import Duration

WebhookEventName = Literal[
    "pre-provision",
    "post-provision",
    "pre-deprovision",
    "post-deprovision",
    "health-changed",
    "failed",
]
"""A lifecycle event a hook can receive."""

WEBHOOK_EVENTS: Final[tuple[WebhookEventName, ...]] = get_args(WebhookEventName)
PRE_EVENTS: Final = frozenset({"pre-provision", "pre-deprovision"})

FailurePolicy = Literal["fail-open", "fail-closed"]

DEFAULT_WEBHOOK_TIMEOUT: Final = 5.0
DEFAULT_WEBHOOK_RETRIES: Final = 3
DEFAULT_FAILURE_POLICY: Final[FailurePolicy] = "fail-closed"
MAX_WEBHOOK_TIMEOUT: Final = 60.0
MAX_WEBHOOK_RETRIES: Final = 10


def _http_url(value: str) -> str:
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise expected("an http:// or https:// URL with a host, like https://hooks.example/ozwald")
    if parsed.username is not None or parsed.password is not None:
        raise expected(
            "a URL without user:password@ (it would show in logs); the HMAC signature "
            "authenticates the agent"
        )
    return value


def _distinct_events(events: tuple[WebhookEventName, ...]) -> tuple[WebhookEventName, ...]:
    if not events:
        raise expected("at least one event")
    return tuple(dict.fromkeys(events))


class WebhookDeclaration(StrictModel):
    """An HTTP endpoint the agent POSTs signed lifecycle events to."""

    url: Annotated[str, AfterValidator(_http_url)]
    """http:// or https:// URL that receives the events."""
    events: Annotated[tuple[WebhookEventName, ...], AfterValidator(_distinct_events)]
    """pre-provision, post-provision, pre-deprovision, post-deprovision, health-changed, failed."""
    signing_key_file: str
    """File holding the HMAC-SHA256 key (relative to the config file's directory); it must
    exist, and the agent reads it at every delivery."""
    timeout: Annotated[Duration, Field(gt=0, le=MAX_WEBHOOK_TIMEOUT)] = DEFAULT_WEBHOOK_TIMEOUT
    """How long one attempt may take (default 5s, at most 60s)."""
    retries: Annotated[int, Field(ge=0, le=MAX_WEBHOOK_RETRIES)] = DEFAULT_WEBHOOK_RETRIES
    """Post-events: attempts after a failed first one (default 3). Pre-events never retry."""
    failure_policy: FailurePolicy = DEFAULT_FAILURE_POLICY
    """Pre-events: whether a hook that cannot answer lets the action go ahead (fail-open)
    or vetoes it (fail-closed, the default)."""
