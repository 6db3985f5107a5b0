"""Building refusals: one stable reason, the arithmetic in words and in fields, a remedy."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeAlias

from ozwald.agent.v1 import plan_pb2

from ozwald_agent.admission.keys import ServiceKey, ref

Reason: TypeAlias = plan_pb2.RefusalReason.ValueType

BYTES = plan_pb2.RESOURCE_UNIT_BYTES
CPU_CORES = plan_pb2.RESOURCE_UNIT_CPU_CORES
GPUS = plan_pb2.RESOURCE_UNIT_GPUS


def refusal(
    key: ServiceKey,
    reason: Reason,
    message: str,
    remedy: str,
    *,
    quantity: plan_pb2.Quantity | None = None,
    subject: str = "",
    involved: Iterable[ServiceKey] = (),
) -> plan_pb2.Refusal:
    refused = plan_pb2.Refusal(
        realm=key[0],
        name=key[1],
        reason=reason,
        message=message,
        remedy=remedy,
        subject=subject,
        involved=[ref(k) for k in involved],
    )
    if quantity is not None:
        refused.quantity.CopyFrom(quantity)
    return refused


def quantity(
    needed: float, available: float, capacity: float, unit: plan_pb2.ResourceUnit.ValueType
) -> plan_pb2.Quantity:
    return plan_pb2.Quantity(needed=needed, available=available, capacity=capacity, unit=unit)


def by_service(refusals: Sequence[plan_pb2.Refusal]) -> list[plan_pb2.Refusal]:
    """Sorted by realm and name; a service's own refusals keep the order they were found in."""
    return sorted(refusals, key=lambda r: (r.realm, r.name))
