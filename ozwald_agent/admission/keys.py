"""How admission names services: (realm, name) keys, their labels and their proto form."""

from __future__ import annotations

from collections.abc import Iterable

from ozwald.agent.v1 import plan_pb2
from ozwald.common.v1 import service_spec_pb2

ServiceKey = tuple[str, str]


def key_of(spec: service_spec_pb2.ServiceSpec) -> ServiceKey:
    return (spec.realm, spec.name)


def label(key: ServiceKey) -> str:
    """`realm:name`, the way the CLI names a service."""
    return f"{key[0]}:{key[1]}"


def labels(keys: Iterable[ServiceKey]) -> str:
    return ", ".join(label(k) for k in keys)


def ref(key: ServiceKey) -> plan_pb2.ServiceRef:
    return plan_pb2.ServiceRef(realm=key[0], name=key[1])
