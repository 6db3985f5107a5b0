"""Pre-events before the desired state changes: the hooks' chance to say no.

Run under the apply lock, after admission and before anything is stored, so a veto
leaves the desired state, the containers and the networks exactly as they were. Only
actions an operator asked for are gated (an apply's START, RESTART and STOP, a
StopServices); the reconciler's own healing restarts are not: a hook must not be able
to keep a crashed service down.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ozwald.agent.v1 import plan_pb2, service_status_pb2
from ozwald.common.v1 import service_spec_pb2

from ozwald_agent.webhooks.dispatcher import WebhookDispatcher, WebhookVetoedError
from ozwald_agent.webhooks.payload import EventFacts

_ACTIONS = {plan_pb2.ACTION_KIND_START: "start", plan_pb2.ACTION_KIND_RESTART: "restart"}

Key = tuple[str, str]


def check_apply(
    dispatcher: WebhookDispatcher,
    admitted: plan_pb2.Plan,
    running: Mapping[Key, service_spec_pb2.ServiceSpec],
    statuses: Mapping[Key, service_status_pb2.InstanceStatus],
) -> None:
    """pre-deprovision for each STOP (with the spec it runs), then pre-provision for each
    START and RESTART (with the spec it will run); raises WebhookVetoedError."""
    for action in admitted.actions:
        key = (action.realm, action.name)
        if action.kind == plan_pb2.ACTION_KIND_STOP and key in running:
            _check(dispatcher, "pre-deprovision", running[key], statuses.get(key), "stop")
    for action in admitted.actions:
        if action.kind in _ACTIONS and not action.persistent:
            key = (action.realm, action.name)
            _check(
                dispatcher,
                "pre-provision",
                action.spec,
                statuses.get(key),
                _ACTIONS[action.kind],
                fingerprint=action.fingerprint,
            )


def check_stop(
    dispatcher: WebhookDispatcher,
    keys: Sequence[Key],
    running: Mapping[Key, service_spec_pb2.ServiceSpec],
    statuses: Mapping[Key, service_status_pb2.InstanceStatus],
) -> None:
    for key in keys:
        if key in running:
            _check(dispatcher, "pre-deprovision", running[key], statuses.get(key), "stop")


def _check(
    dispatcher: WebhookDispatcher,
    event: str,
    spec: service_spec_pb2.ServiceSpec,
    status: service_status_pb2.InstanceStatus | None,
    action: str,
    *,
    fingerprint: str = "",
) -> None:
    if not spec.webhooks:
        return
    veto = dispatcher.check(
        EventFacts(
            event=event,
            spec=spec,
            state=status.state if status else service_status_pb2.INSTANCE_STATE_UNSPECIFIED,
            previous_state=service_status_pb2.INSTANCE_STATE_UNSPECIFIED,
            reason=f"{action} requested",
            generation=status.generation if status else 0,
            container_id=status.container_id if status else "",
            action=action,
            fingerprint=fingerprint or (status.fingerprint if status else ""),
        )
    )
    if veto is not None:
        raise WebhookVetoedError(veto)
