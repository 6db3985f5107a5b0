"""The provisioning API behind AgentService: plan, apply, stop, list, watch, logs.

Apply is plan-then-store under one lock: two applies at once are serialised, each is
admitted against what the one before it stored, and none is lost. The store holds what
was admitted; the reconciler converges the containers to it in the background.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import TypeAlias

from ozwald.agent.v1 import plan_pb2, service_scope_pb2, service_status_pb2
from ozwald.common.v1 import host_profile_pb2, service_spec_pb2

from ozwald_agent.admission.dependencies import stop_order
from ozwald_agent.admission.facts import HostFacts
from ozwald_agent.admission.footprints import FootprintBook, NoFootprints
from ozwald_agent.admission.planner import plan
from ozwald_agent.admission.running import RunningService
from ozwald_agent.provisioning.event_feed import EventFeed
from ozwald_agent.provisioning.profiled_copy import CopyFootprints, profiled_copy
from ozwald_agent.provisioning.reconciler import Reconciler
from ozwald_agent.runtime.protocol import ContainerRuntime
from ozwald_agent.runtime.streams import StoppableIterator
from ozwald_agent.secrets.gate import SecretsGate
from ozwald_agent.state.store import AgentStore, DesiredService
from ozwald_agent.volumes.gate import VolumesGate
from ozwald_agent.webhooks import gate
from ozwald_agent.webhooks.dispatcher import WebhookDispatcher
from ozwald_agent.webhooks.lifecycle import LifecycleEvents

Scope: TypeAlias = service_scope_pb2.ServiceScope.ValueType
DYNAMIC = service_scope_pb2.SERVICE_SCOPE_DYNAMIC
PERSISTENT = service_scope_pb2.SERVICE_SCOPE_PERSISTENT
FLEET = service_scope_pb2.SERVICE_SCOPE_FLEET
WATCH_POLL_S = 1.0


class AdmissionRefusedError(Exception):
    """Admission refused at least one service; nothing changed."""

    def __init__(self, refused: plan_pb2.Plan) -> None:
        self.plan = refused
        super().__init__(f"admission refused {len(refused.refusals)} service(s)")


class ServiceNotFoundError(Exception):
    def __init__(self, realm: str, name: str) -> None:
        self.realm, self.name = realm, name
        super().__init__(f"no service {realm}:{name} on this host")


class Provisioner:
    def __init__(
        self,
        store: AgentStore,
        runtime: ContainerRuntime,
        facts: HostFacts,
        host_profile: Callable[[], host_profile_pb2.HostProfile],
        footprints: FootprintBook | None = None,
        *,
        webhooks: WebhookDispatcher | None = None,
        secrets: SecretsGate | None = None,
        volumes: VolumesGate | None = None,
    ) -> None:
        self._store = store
        self._secrets = secrets
        self._volumes = volumes
        self._webhooks = webhooks
        self._runtime = runtime
        self._facts = facts
        self._host_profile = host_profile
        self._footprints: FootprintBook = footprints or NoFootprints()
        self._apply_lock = threading.Lock()
        # The copy of a service being profiled: it holds its CPUs and GPUs in every plan
        # (as a persistent service would) until its measurement ends.
        self._profiled: RunningService | None = None
        self.feed = EventFeed(store.last_sequence())
        self.reconciler = Reconciler(
            store,
            runtime,
            self.feed,
            host_profile,
            on_published=LifecycleEvents(webhooks) if webhooks is not None else None,
        )

    def start(self) -> None:
        self.reconciler.start()

    def stop(self) -> None:
        self.feed.close()
        self.reconciler.stop()

    # Plan and apply ---------------------------------------------------------------

    def plan(self, services: Sequence[service_spec_pb2.ServiceSpec], scope: Scope) -> plan_pb2.Plan:
        return self._plan(services, _scope(scope), self._store.desired())

    def apply(
        self, services: Sequence[service_spec_pb2.ServiceSpec], scope: Scope
    ) -> tuple[plan_pb2.Plan, int, int]:
        """The admitted plan, the last event sequence before it, and its generation."""
        scope = _scope(scope)
        with self._apply_lock:
            sequence = self._store.last_sequence()
            admitted = self._plan(services, scope, self._store.desired())
            if not admitted.admitted:
                raise AdmissionRefusedError(admitted)
            # Pre-hooks gate operators' applies only: the persistent set is the agent's own
            # start-up config, and the FLEET set is the orchestrator's decision, which a
            # local veto would only turn into drift it keeps re-sending.
            if self._webhooks is not None and scope == DYNAMIC:
                # Before anything is stored: a veto (WebhookVetoedError) changes nothing.
                gate.check_apply(self._webhooks, admitted, *self._running_specs())
            generation = self._store.replace_desired(scope, _desired_from(admitted, scope))
            if self._secrets is not None:
                self._secrets.retire_unused(d.spec for d in self._store.desired())
        self.reconciler.wake()
        return admitted, sequence, generation

    def stop_services(
        self, refs: Sequence[plan_pb2.ServiceRef]
    ) -> tuple[list[plan_pb2.ServiceRef], int]:
        """Remove named services (all dynamic ones when none is named) from the desired set."""
        with self._apply_lock:
            sequence = self._store.last_sequence()
            desired = {d.key: d for d in self._store.desired()}
            if refs:
                named = [_resolve_ref(ref, desired.keys()) for ref in refs]
            else:
                named = [k for k, d in desired.items() if d.scope == DYNAMIC]
            keys = stop_order({k: d.spec for k, d in desired.items()}, named)
            if self._webhooks is not None:
                gate.check_stop(self._webhooks, keys, *self._running_specs())
            self._store.remove_desired(keys)
            if self._secrets is not None:
                self._secrets.retire_unused(d.spec for d in self._store.desired())
        self.reconciler.wake()
        return [plan_pb2.ServiceRef(realm=r, name=n) for r, n in keys], sequence

    def _running_specs(
        self,
    ) -> tuple[
        dict[tuple[str, str], service_spec_pb2.ServiceSpec],
        dict[tuple[str, str], service_status_pb2.InstanceStatus],
    ]:
        """What pre-event hooks are told: the desired specs and statuses stored now."""
        specs = {d.key: d.spec for d in self._store.desired()}
        return specs, {(s.realm, s.name): s for s in self._store.instances()}

    # Profiling ----------------------------------------------------------------------

    def admit_profiled_copy(
        self, spec: service_spec_pb2.ServiceSpec, *, reserve: bool
    ) -> tuple[plan_pb2.Plan, service_spec_pb2.ServiceSpec]:
        """Plans a copy of `spec` (see `profiled_copy`) beside everything that runs now,
        changing nothing; returns the plan and the copy.

        With `reserve`, an admitted copy keeps its CPUs and GPUs reserved in every plan
        made until `release_profiled_copy()`, so an apply during the measurement cannot
        promise them to another service.
        """
        plannable = _as_plannable(spec)
        copy = profiled_copy(plannable)
        with self._apply_lock:
            if reserve and self._profiled is not None:
                raise RuntimeError("a profiled copy is already reserved")
            desired = self._store.desired()
            dynamic = [_as_plannable(d.spec) for d in desired if d.scope == DYNAMIC]
            book = CopyFootprints(self._footprints, plannable, copy)
            result = self._plan([*dynamic, copy], DYNAMIC, desired, book)
            if result.admitted and reserve:
                action = next(
                    a for a in result.actions if (a.realm, a.name) == (copy.realm, copy.name)
                )
                self._profiled = RunningService(
                    realm=copy.realm,
                    name=copy.name,
                    spec=copy,
                    fingerprint=action.fingerprint,
                    gpu_uuids=tuple(d.uuid for d in action.gpus.devices),
                    persistent=True,
                )
        return result, copy

    def release_profiled_copy(self) -> None:
        with self._apply_lock:
            self._profiled = None

    def _plan(
        self,
        services: Sequence[service_spec_pb2.ServiceSpec],
        scope: Scope,
        desired: Sequence[DesiredService],
        footprints: FootprintBook | None = None,
    ) -> plan_pb2.Plan:
        # The planner treats its input as the set it may change and what is marked
        # persistent as untouchable: here, every service of another scope.
        running = [
            RunningService(
                realm=d.spec.realm,
                name=d.spec.name,
                spec=_as_plannable(d.spec),
                fingerprint=d.fingerprint,
                gpu_uuids=d.gpu_uuids,
                persistent=d.scope != scope,
                scope=d.scope,
            )
            for d in desired
        ]
        if self._profiled is not None:
            running.append(self._profiled)
        if self._secrets is not None:
            # Pins each locker's revision into the spec, so it is part of the fingerprint.
            services = self._secrets.stamp(services)
        if self._volumes is not None:
            # Pins each volume's key revision and version into the spec (fingerprint).
            services = self._volumes.stamp(services)
        result = plan(
            [_as_plannable(s) for s in services],
            running,
            self._host_profile(),
            self._facts,
            footprints or self._footprints,
        )
        if self._profiled is not None:
            for action in result.actions:
                if (action.realm, action.name) == (self._profiled.realm, self._profiled.name):
                    action.reason = "profiling copy: holds its resources until its measurement ends"
        if self._secrets is not None:
            self._secrets.refuse(result)
        if self._volumes is not None:
            self._volumes.refuse(result)
        return result

    # Observe ----------------------------------------------------------------------

    def statuses(self, realm: str) -> tuple[list[service_status_pb2.InstanceStatus], int]:
        statuses, sequence = self._store.snapshot()
        return [s for s in statuses if not realm or s.realm == realm], sequence

    def scope_keys(self, scope: Scope) -> set[tuple[str, str]]:
        """The (realm, name) of every desired service of `scope`."""
        return self._store.desired_keys(_scope(scope))

    def scope_statuses(
        self, scope: Scope, leaving: Collection[tuple[str, str]] = ()
    ) -> tuple[list[service_status_pb2.InstanceStatus], int]:
        """The statuses of the desired services of `scope` (those with a status yet), and
        the sequence of the last event they reflect: `events_after` it picks up from there.

        `leaving` names services the caller knew in `scope` before: those that left it
        but have not stopped yet are included, since the agent no longer records
        which scope a service that is no longer desired had."""
        keys = self.scope_keys(scope)
        statuses, sequence = self._store.snapshot()
        return [
            s
            for s in statuses
            if (s.realm, s.name) in keys
            or (
                (s.realm, s.name) in leaving
                and s.state != service_status_pb2.INSTANCE_STATE_STOPPED
            )
        ], sequence

    def events_after(self, sequence: int) -> list[service_status_pb2.ServiceEvent]:
        """The recorded events after `sequence`, oldest first (at most a batch of them)."""
        return self._store.events_after(sequence)

    def watch(
        self, after_sequence: int, realm: str, active: Callable[[], bool]
    ) -> Iterator[service_status_pb2.ServiceEvent]:
        cursor = after_sequence
        while active():
            for event in self._store.events_after(cursor):
                cursor = event.sequence
                if not realm or event.status.realm == realm:
                    yield event
            if not self.feed.wait_beyond(cursor, WATCH_POLL_S) and self.feed.closed:
                return

    def logs(
        self, ref: plan_pb2.ServiceRef, tail: int, follow: bool
    ) -> StoppableIterator[str] | list[str]:
        known = {(s.realm, s.name): s for s in self._store.instances()}
        realm, name = _resolve_ref(ref, known.keys())
        container = self._runtime.inspect_service(realm, name)
        if container is None:
            # A failed service's container is gone; the lines kept from it are what is left.
            kept = list(known[(realm, name)].last_log_lines)
            return kept[-tail:] if tail else kept
        if follow:
            return self._runtime.follow_logs(container.id, tail=tail or None)
        return self._runtime.logs(container.id, tail=tail or None)


def _scope(scope: Scope) -> Scope:
    return scope if scope in (PERSISTENT, FLEET) else DYNAMIC


def _as_plannable(spec: service_spec_pb2.ServiceSpec) -> service_spec_pb2.ServiceSpec:
    """The spec without its persistent flag: scope, not the spec, says what is untouchable."""
    if not spec.persistent:
        return spec
    copy = service_spec_pb2.ServiceSpec()
    copy.CopyFrom(spec)
    copy.persistent = False
    return copy


def _desired_from(admitted: plan_pb2.Plan, scope: Scope) -> list[DesiredService]:
    services = []
    for action in admitted.actions:
        # "persistent" in the plan means "of the other scope": not ours to store.
        if action.kind == plan_pb2.ACTION_KIND_STOP or action.persistent:
            continue
        spec = service_spec_pb2.ServiceSpec()
        spec.CopyFrom(action.spec)
        spec.persistent = scope == PERSISTENT
        services.append(
            DesiredService(
                spec=spec,
                scope=scope,
                fingerprint=action.fingerprint,
                gpu_vendor=action.gpus.vendor,
                gpu_uuids=tuple(d.uuid for d in action.gpus.devices),
            )
        )
    return services


def _resolve_ref(ref: plan_pb2.ServiceRef, known: Collection[tuple[str, str]]) -> tuple[str, str]:
    """The realm defaults to the only one known, else "default"."""
    realms = sorted({realm for realm, _ in known})
    realm = ref.realm or (realms[0] if len(realms) == 1 else "default")
    if (realm, ref.name) not in known:
        raise ServiceNotFoundError(realm, ref.name)
    return realm, ref.name
