"""A webhook as the effective spec carries it: every value final, the key file absolute."""

from __future__ import annotations

from typing import Final

from google.protobuf.duration_pb2 import Duration
from ozwald.common.v1 import webhook_pb2
from pydantic import BaseModel, ConfigDict

from ozwald_sdk.config.model_webhook import FailurePolicy, WebhookEventName

EVENT_CODES: Final[dict[WebhookEventName, webhook_pb2.WebhookEvent.ValueType]] = {
    "pre-provision": webhook_pb2.WEBHOOK_EVENT_PRE_PROVISION,
    "post-provision": webhook_pb2.WEBHOOK_EVENT_POST_PROVISION,
    "pre-deprovision": webhook_pb2.WEBHOOK_EVENT_PRE_DEPROVISION,
    "post-deprovision": webhook_pb2.WEBHOOK_EVENT_POST_DEPROVISION,
    "health-changed": webhook_pb2.WEBHOOK_EVENT_HEALTH_CHANGED,
    "failed": webhook_pb2.WEBHOOK_EVENT_FAILED,
}
EVENT_NAMES: Final[dict[webhook_pb2.WebhookEvent.ValueType, WebhookEventName]] = {
    code: name for name, code in EVENT_CODES.items()
}
POLICY_CODES: Final[dict[FailurePolicy, webhook_pb2.WebhookFailurePolicy.ValueType]] = {
    "fail-open": webhook_pb2.WEBHOOK_FAILURE_POLICY_FAIL_OPEN,
    "fail-closed": webhook_pb2.WEBHOOK_FAILURE_POLICY_FAIL_CLOSED,
}


class EffectiveWebhook(BaseModel):
    """One hook a service subscribes to, as declared in its realm."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    url: str
    events: tuple[WebhookEventName, ...]
    timeout: float
    retries: int
    failure_policy: FailurePolicy
    signing_key_file: str
    """Absolute path on the host; the key's value is read by the agent, never carried."""

    def to_proto(self) -> webhook_pb2.Webhook:
        timeout = Duration()
        timeout.FromNanoseconds(round(self.timeout * 1e9))
        return webhook_pb2.Webhook(
            name=self.name,
            url=self.url,
            events=[EVENT_CODES[e] for e in self.events],
            timeout=timeout,
            retries=self.retries,
            failure_policy=POLICY_CODES[self.failure_policy],
            signing_key_file=self.signing_key_file,
        )
