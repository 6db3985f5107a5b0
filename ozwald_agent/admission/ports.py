"""Host ports: every portal's address and port claimed once, and free on the host.

Two bindings collide when their ports are equal and their addresses are equal or either is
a wildcard ("0.0.0.0", "::"): a wildcard listens on every address. An empty host_ip is the
documented default, 127.0.0.1.

A port held by one of Ozwald's own running services is not asked of the host: the host
would say "taken" although the plan decides who has it. Kept services keep their ports
first; a port of a service that stops or restarts is free for the plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ozwald.agent.v1 import plan_pb2
from ozwald.common.v1 import service_spec_pb2

from ozwald_agent.admission.facts import HostFacts
from ozwald_agent.admission.keys import ServiceKey, key_of, label
from ozwald_agent.admission.refusals import refusal

DEFAULT_HOST_IP = "127.0.0.1"
_WILDCARDS = frozenset({"0.0.0.0", "::"})


@dataclass(frozen=True)
class Binding:
    key: ServiceKey
    portal: str
    host_ip: str
    host_port: int

    def collides(self, other: Binding) -> bool:
        return self.host_port == other.host_port and (
            self.host_ip == other.host_ip
            or self.host_ip in _WILDCARDS
            or other.host_ip in _WILDCARDS
        )

    @property
    def address(self) -> str:
        host = f"[{self.host_ip}]" if ":" in self.host_ip else self.host_ip
        return f"{host}:{self.host_port}"


def bindings(spec: service_spec_pb2.ServiceSpec) -> list[Binding]:
    return [
        Binding(key_of(spec), p.name, p.host_ip or DEFAULT_HOST_IP, p.host_port)
        for p in spec.portals
    ]


class PortBook:
    def __init__(self, ours: Iterable[service_spec_pb2.ServiceSpec]) -> None:
        """`ours`: the specs of every Ozwald service running now, whatever the plan does."""
        self._ours = [b for spec in ours for b in bindings(spec)]
        self._claims: list[Binding] = []

    def hold(self, spec: service_spec_pb2.ServiceSpec) -> None:
        """A kept service keeps its ports."""
        self._claims.extend(bindings(spec))

    def claim(
        self, spec: service_spec_pb2.ServiceSpec, facts: HostFacts
    ) -> Sequence[plan_pb2.Refusal]:
        """Claims an arriving service's ports, or says why each one it cannot have."""
        refused: list[plan_pb2.Refusal] = []
        for wanted in bindings(spec):
            rival = next((c for c in self._claims if c.collides(wanted)), None)
            if rival is not None:
                refused.append(_claimed_twice(wanted, rival))
                continue
            if not any(b.collides(wanted) for b in self._ours) and not facts.host_port_free(
                wanted.host_ip, wanted.host_port
            ):
                refused.append(_taken(wanted))
                continue
            self._claims.append(wanted)
        return refused


def _claimed_twice(wanted: Binding, rival: Binding) -> plan_pb2.Refusal:
    whose = "its own portal" if rival.key == wanted.key else f"{label(rival.key)}'s portal"
    same = "" if rival.address == wanted.address else f", which overlaps {rival.address}"
    return refusal(
        wanted.key,
        plan_pb2.REFUSAL_REASON_PORT_CLAIMED_TWICE,
        f"portal {wanted.portal!r} wants host port {wanted.address}{same}, claimed by {whose} "
        f"{rival.portal!r}",
        "give one of the portals another host_port (or another host_ip, neither of them a "
        "wildcard)",
        subject=wanted.address,
        involved=() if rival.key == wanted.key else (rival.key,),
    )


def _taken(wanted: Binding) -> plan_pb2.Refusal:
    return refusal(
        wanted.key,
        plan_pb2.REFUSAL_REASON_HOST_PORT_TAKEN,
        f"portal {wanted.portal!r} wants host port {wanted.address}, which something Ozwald "
        "does not run already listens on",
        f"stop what listens there (`ss -ltnp 'sport = :{wanted.host_port}'` names it), or give "
        "the portal another host_port",
        subject=wanted.address,
    )
