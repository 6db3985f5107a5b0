"""An in-memory agent that provisions nothing but says it does, for CLI tests.

`ProvisioningFake` implements every provisioning RPC of AgentService the way the real
agent's contract describes them: plans diff the desired set against what "runs" (START,
STOP, RESTART, KEEP by fingerprint) and refuse what does not fit the host's memory (or
what a test scripts a refusal for); applies store the set and play each service's
scripted life as numbered ServiceEvents; watches replay from a sequence, then follow
live; logs serve scripted bytes. Events are recorded before the apply answers unless
`event_gap` is set, in which case a thread plays them that many seconds apart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_status import rpc_status as grpc_rpc_status
from ozwald.agent.v1 import agent_service_pb2 as pb
from ozwald.agent.v1 import plan_pb2 as P
from ozwald.agent.v1 import service_status_pb2 as S
from ozwald.agent.v1.agent_service_pb2_grpc import AgentServiceServicer
from ozwald.common.v1 import error_reason_pb2
from ozwald.common.v1.host_profile_pb2 import HostProfile
from ozwald.common.v1.service_spec_pb2 import ServiceSpec

from ozwald_sdk import rpc_status
from ozwald_sdk.fingerprint import fingerprint
from tests.unit.cli.profiling_fake import ProfilingFake, ProfilingState
from tests.unit.cli.webhooks_fake import WebhooksFake, WebhooksState

Key = tuple[str, str]
GIB = 1024**3


@dataclass(frozen=True)
class Step:
    """One scripted state change of a service after an apply."""

    state: S.InstanceState.ValueType
    reason: str
    log_lines: tuple[str, ...] = ()
    # From a reconcile pass that began before the apply: the previous generation.
    stale: bool = False


STARTS_FINE = (
    Step(S.INSTANCE_STATE_CREATING, "creating its container"),
    Step(S.INSTANCE_STATE_STARTING, "container started; waiting for health"),
    Step(S.INSTANCE_STATE_READY, "health check passed"),
)


@dataclass
class ProvisioningFake(ProfilingFake, WebhooksFake, AgentServiceServicer):
    profile: HostProfile
    scripts: dict[str, Sequence[Step]] = field(default_factory=dict)
    """Service name -> its life after an apply; STARTS_FINE when not given."""
    generation: int = 0
    """Of the last apply."""
    refusals: dict[str, P.Refusal] = field(default_factory=dict)
    """Service name -> a refusal to add whenever it is desired."""
    logs: dict[str, Sequence[bytes]] = field(default_factory=dict)
    event_gap: float = 0.0
    follow_for: float = 30.0
    calls: list[tuple[str, Message]] = field(default_factory=list)
    instances: dict[Key, S.InstanceStatus] = field(default_factory=dict)
    events: list[S.ServiceEvent] = field(default_factory=list)
    running: dict[Key, tuple[ServiceSpec, str]] = field(default_factory=dict)
    profiling: ProfilingState = field(default_factory=ProfilingState)
    webhooks: WebhooksState = field(default_factory=WebhooksState)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _players: list[threading.Thread] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    # Test set-up --------------------------------------------------------------------

    def seed(self, status: S.InstanceStatus, spec: ServiceSpec | None = None) -> None:
        """An instance that runs before the test begins, recorded as one event."""
        key = (status.realm, status.name)
        if spec is not None:
            status.fingerprint = fingerprint(spec)
            self.running[key] = (spec, status.fingerprint)
        self._record(status)

    def sent(self, method: str) -> list[Any]:
        return [request for name, request in self.calls if name == method]

    def join(self) -> None:
        """Stop playing scripted events, and wait for the players to end."""
        self._stop.set()
        for player in self._players:
            player.join(timeout=10)

    # RPCs ---------------------------------------------------------------------------

    def GetHostProfile(
        self, request: pb.GetHostProfileRequest, context: grpc.ServicerContext
    ) -> pb.GetHostProfileResponse:
        self.calls.append(("GetHostProfile", request))
        return pb.GetHostProfileResponse(profile=self.profile)

    def WatchHostProfile(self, request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "this fake agent does not watch profiles")

    def PlanServices(
        self, request: pb.PlanServicesRequest, context: grpc.ServicerContext
    ) -> pb.PlanServicesResponse:
        self.calls.append(("PlanServices", request))
        return pb.PlanServicesResponse(plan=self._plan(request.services))

    def ApplyServices(
        self, request: pb.ApplyServicesRequest, context: grpc.ServicerContext
    ) -> pb.ApplyServicesResponse:
        self.calls.append(("ApplyServices", request))
        plan = self._plan(request.services)
        if not plan.admitted:
            status = rpc_status.status_error(
                grpc.StatusCode.FAILED_PRECONDITION,
                error_reason_pb2.ERROR_REASON_ADMISSION_REFUSED,
                f"nothing changed: {plan.refusals[0].message}",
                "see each refusal's remedy (`ozwald update_services --plan` lists them all)",
            )
            packed = any_pb2.Any()
            packed.Pack(plan)
            status.details.append(packed)
            context.abort_with_status(grpc_rpc_status.to_status(status))
        sequence = self._last_sequence()
        lives: list[tuple[ServiceSpec, str, Sequence[Step]]] = []
        for action in plan.actions:
            key = (action.realm, action.name)
            if action.kind == P.ACTION_KIND_STOP:
                del self.running[key]
                lives.append((ServiceSpec(realm=action.realm, name=action.name), "", ()))
                continue
            self.running[key] = (action.spec, action.fingerprint)
            failed = self.instances.get(key, S.InstanceStatus()).state == S.INSTANCE_STATE_FAILED
            if action.kind != P.ACTION_KIND_KEEP or failed:
                lives.append(
                    (action.spec, action.fingerprint, self.scripts.get(action.name, STARTS_FINE))
                )
        self._play(lives)
        self.generation += 1
        return pb.ApplyServicesResponse(
            plan=plan, event_sequence=sequence, generation=self.generation
        )

    def StopServices(
        self, request: pb.StopServicesRequest, context: grpc.ServicerContext
    ) -> pb.StopServicesResponse:
        self.calls.append(("StopServices", request))
        sequence = self._last_sequence()
        if request.services:
            keys = [self._known(ref, self.running.keys(), context) for ref in request.services]
        else:
            keys = sorted(self.running)
        for key in keys:
            del self.running[key]
        self._play([(ServiceSpec(realm=r, name=n), "", ()) for r, n in keys])
        return pb.StopServicesResponse(
            stopping=[P.ServiceRef(realm=r, name=n) for r, n in keys], event_sequence=sequence
        )

    def ListServices(
        self, request: pb.ListServicesRequest, context: grpc.ServicerContext
    ) -> pb.ListServicesResponse:
        self.calls.append(("ListServices", request))
        with self._changed:
            instances = [
                status
                for key, status in sorted(self.instances.items())
                if not request.realm or key[0] == request.realm
            ]
            return pb.ListServicesResponse(
                instances=instances, event_sequence=self._last_sequence()
            )

    def WatchServices(
        self, request: pb.WatchServicesRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.WatchServicesResponse]:
        self.calls.append(("WatchServices", request))
        cursor = request.after_sequence
        while context.is_active():
            with self._changed:
                news = [e for e in self.events if e.sequence > cursor]
                if not news:
                    self._changed.wait(0.05)
                    continue
            for event in news:
                cursor = event.sequence
                if not request.realm or event.status.realm == request.realm:
                    yield pb.WatchServicesResponse(event=event)

    def StreamServiceLogs(
        self, request: pb.StreamServiceLogsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.StreamServiceLogsResponse]:
        self.calls.append(("StreamServiceLogs", request))
        # Like the agent: a failed service's container is removed, and with it its log.
        with_container = [
            key for key, status in self.instances.items() if status.state != S.INSTANCE_STATE_FAILED
        ]
        key = self._known(request.service, with_container, context)
        chunks = list(self.logs.get(key[1], ()))
        if request.tail_lines:
            chunks = chunks[-request.tail_lines :]
        for chunk in chunks:
            yield pb.StreamServiceLogsResponse(data=chunk)
        if request.follow:
            # Until the client cancels, or (as when the container is removed) the agent
            # ends the stream after `follow_for` seconds.
            gone = threading.Event()
            context.add_callback(gone.set)
            gone.wait(self.follow_for)

    # Behind the RPCs ----------------------------------------------------------------

    def _plan(self, services: Sequence[ServiceSpec]) -> P.Plan:
        plan = P.Plan(hostname=self.profile.hostname)
        plan.profile_collected_at.CopyFrom(self.profile.collected_at)
        desired = {(s.realm, s.name): s for s in services}
        claimed = released = 0
        for key in sorted(desired.keys() | self.running.keys()):
            action = P.PlannedAction(realm=key[0], name=key[1])
            if key not in desired:
                spec, running_fingerprint = self.running[key]
                action.kind = P.ACTION_KIND_STOP
                action.reason = "no longer desired"
                action.running_fingerprint = running_fingerprint
                released += spec.resources.memory_bytes
            else:
                spec = desired[key]
                action.spec.CopyFrom(spec)
                action.fingerprint = fingerprint(spec)
                running = self.running.get(key)
                if running is None:
                    action.kind, action.reason = P.ACTION_KIND_START, "new service"
                    claimed += spec.resources.memory_bytes
                elif running[1] == action.fingerprint:
                    action.kind, action.reason = P.ACTION_KIND_KEEP, "unchanged"
                else:
                    action.kind = P.ACTION_KIND_RESTART
                    action.reason = "effective spec changed"
                    action.changed_fields.append("environment")
                    action.running_fingerprint = running[1]
                    claimed += spec.resources.memory_bytes
                    released += running[0].resources.memory_bytes
                if key[1] in self.refusals:
                    plan.refusals.append(self.refusals[key[1]])
            memory = spec.resources.memory_bytes
            action.resources.memory.CopyFrom(
                P.ByteFigure(
                    accounted_bytes=memory,
                    declared_bytes=memory,
                    source=P.FIGURE_SOURCE_DECLARED if memory else P.FIGURE_SOURCE_NONE,
                )
            )
            action.resources.cpus = spec.resources.cpus
            plan.actions.append(action)
        available = self.profile.memory.available_bytes
        for key, spec in sorted(desired.items()):
            needed = spec.resources.memory_bytes
            if key not in self.running and needed > available + released:
                plan.refusals.append(
                    P.Refusal(
                        realm=key[0],
                        name=key[1],
                        reason=P.REFUSAL_REASON_INSUFFICIENT_MEMORY,
                        message=f"needs {needed / GIB:.1f} GiB memory (declared); "
                        f"{(available + released) / GIB:.1f} GiB is free for it",
                        remedy="lower the service's memory (resources.memory_bytes), stop "
                        "services this host runs, or run it on a host with more memory",
                        quantity=P.Quantity(
                            needed=needed,
                            available=available + released,
                            capacity=self.profile.memory.total_bytes,
                            unit=P.RESOURCE_UNIT_BYTES,
                        ),
                    )
                )
        plan.admitted = not plan.refusals
        plan.budget.memory.CopyFrom(
            P.MemoryBudget(
                total_bytes=self.profile.memory.total_bytes,
                available_bytes=available,
                released_bytes=released,
                claimed_bytes=claimed,
                left_bytes=max(0, available + released - claimed),
            )
        )
        plan.budget.cpu.usable_cores = self.profile.cpu.usable_cores
        return plan

    def _play(self, lives: Sequence[tuple[ServiceSpec, str, Sequence[Step]]]) -> None:
        """Each (spec, fingerprint, steps): a service to start (steps) or stop (none)."""
        changes: list[S.InstanceStatus] = []
        for spec, print_, steps in lives:
            key = (spec.realm, spec.name)
            if not print_:
                before = self.instances.get(key)
                if before is None:
                    continue
                for state, reason in (
                    (S.INSTANCE_STATE_STOPPING, "stopping its container"),
                    (S.INSTANCE_STATE_STOPPED, "no longer desired"),
                ):
                    status = S.InstanceStatus()
                    status.CopyFrom(before)
                    status.state, status.reason = state, reason
                    changes.append(status)
                continue
            for step in steps:
                status = S.InstanceStatus(
                    realm=spec.realm,
                    name=spec.name,
                    variety=spec.variety,
                    profile=spec.profile,
                    state=step.state,
                    reason=step.reason,
                    fingerprint=print_,
                    generation=self.generation + 1 - int(step.stale),
                    last_log_lines=list(step.log_lines),
                    endpoints=[f"{p.host_ip or '127.0.0.1'}:{p.host_port}" for p in spec.portals],
                )
                changes.append(status)
        if not self.event_gap:
            for status in changes:
                self._record(status)
            return

        def play() -> None:
            for status in changes:
                if self._stop.wait(self.event_gap):
                    return
                self._record(status)

        player = threading.Thread(target=play, daemon=True)
        self._players.append(player)
        player.start()

    def _record(self, status: S.InstanceStatus) -> None:
        with self._changed:
            stamp = Timestamp()
            stamp.GetCurrentTime()
            if not status.HasField("state_since"):
                status.state_since.CopyFrom(stamp)
            key = (status.realm, status.name)
            if status.state == S.INSTANCE_STATE_STOPPED:
                self.instances.pop(key, None)
            else:
                self.instances[key] = status
            self.events.append(
                S.ServiceEvent(sequence=self._last_sequence() + 1, time=stamp, status=status)
            )
            self._changed.notify_all()

    def _last_sequence(self) -> int:
        return self.events[-1].sequence if self.events else 0

    def _known(self, ref: P.ServiceRef, known: Any, context: grpc.ServicerContext) -> Key:
        key = (ref.realm or "default", ref.name)
        if key not in set(known):
            rpc_status.abort(
                context,
                grpc.StatusCode.NOT_FOUND,
                error_reason_pb2.ERROR_REASON_SERVICE_NOT_FOUND,
                f"no service {key[0]}:{key[1]} on this host",
                "`ozwald status` lists the services this agent knows",
                service=f"{key[0]}:{key[1]}",
            )
        return key


def refusal(name: str, reason: P.RefusalReason.ValueType, message: str, remedy: str) -> P.Refusal:
    return P.Refusal(realm="default", name=name, reason=reason, message=message, remedy=remedy)


def status(
    name: str,
    state: S.InstanceState.ValueType,
    reason: str,
    *,
    since_seconds_ago: float = 0.0,
    realm: str = "default",
    **fields: Any,
) -> S.InstanceStatus:
    """An InstanceStatus that entered `state` `since_seconds_ago` before now."""
    since = Timestamp()
    since.FromNanoseconds(time.time_ns() - int(since_seconds_ago * 1e9))
    return S.InstanceStatus(
        realm=realm, name=name, state=state, reason=reason, state_since=since, **fields
    )


CONFIG = """\
version: 1
realms:
  default:
    portals:
      web-api: {service: web, host_port: 18080}
    services:
      web:
        image: ozwald/tiny:local
        connector_port: 8080
        resources: {memory: 64MiB, cpus: 0.5}
        profiles:
          loud:
            environment: {GREETING: HELLO}
      worker:
        image: ozwald/tiny:local
        depends_on: [web]
        resources: {memory: 32MiB}
      embed:
        image: ozwald/tiny:local
        resources: {memory: 128MiB}
        varieties:
          nvidia:
            resources: {gpus: {count: 1}}
          cpu: {}
      keeper:
        image: ozwald/tiny:local
        persistent: true
      big:
        image: ozwald/tiny:local
        resources: {memory: 64GiB}
"""
"""A small ozwald.yml: web (with a portal and a profile), worker (needs web), embed
(nvidia or cpu), keeper (persistent), big (more memory than any test host has)."""
