"""A simulated container runtime: instances that start, get ready, crash and restart on timers.

It stands in for an agent's provisioner and the Docker Engine behind it. `apply` takes a
complete desired set (an Assignment's services), admits it atomically against the host's
simulated hardware (sim_admission), and converges: new services go STARTING and then READY
after `ready_after_s`, services that left are STOPPING and then removed, changed ones are
restarted. Tests make instances crash (they restart under their restart policy, like the
agent restarts them) and make memory vanish so that admission refuses.

Status changes are coalesced per event-loop turn and handed to `on_change` as one batch,
the way an agent sends one InstanceReport for changes seen together. Everything runs on
the caller's event loop: no thread and no task per instance, only timer handles, so one
process can hold thousands of hosts.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from google.protobuf import timestamp_pb2
from ozwald.agent.v1 import plan_pb2, service_status_pb2
from ozwald.common.v1 import service_spec_pb2

from ozwald_sdk.fingerprint import fingerprint
from ozwald_testbed.sim_admission import Running, admit
from ozwald_testbed.simulated_hardware import SimulatedHardware

logger = logging.getLogger(__name__)

State = service_status_pb2.InstanceState
STARTING = service_status_pb2.INSTANCE_STATE_STARTING
READY = service_status_pb2.INSTANCE_STATE_READY
RESTARTING = service_status_pb2.INSTANCE_STATE_RESTARTING
UNHEALTHY = service_status_pb2.INSTANCE_STATE_UNHEALTHY
FAILED = service_status_pb2.INSTANCE_STATE_FAILED
STOPPING = service_status_pb2.INSTANCE_STATE_STOPPING

# Called with the changed statuses, the names removed, and when the first change was seen.
ChangeListener = Callable[[list[service_status_pb2.InstanceStatus], list[str], float], None]


@dataclass(frozen=True)
class RuntimeTiming:
    """How long the simulated containers take."""

    # From creation to a passing health check.
    ready_after_s: float = 0.2
    # The wait before an exited container is started again.
    restart_after_s: float = 0.2
    # From the stop request to the container being gone.
    stop_after_s: float = 0.0
    # How long a crash-looping container runs before it exits again.
    crash_after_s: float = 0.1


@dataclass
class _Instance:
    spec: service_spec_pb2.ServiceSpec
    fingerprint: str
    gpu_uuids: tuple[str, ...]
    generation: int
    state: State.ValueType = STARTING
    reason: str = "container created; waiting for the health check"
    state_since: float = field(default_factory=time.time)
    container_id: str = field(default_factory=lambda: uuid.uuid4().hex + uuid.uuid4().hex)
    restart_count: int = 0
    last_exit_code: int = 0
    exited: bool = False
    crash_loop_exit_code: int | None = None
    timer: asyncio.TimerHandle | None = None

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class SimulatedRuntime:
    """The instances of one simulated host."""

    def __init__(
        self,
        hardware: SimulatedHardware,
        *,
        hostname: str,
        timing: RuntimeTiming | None = None,
    ) -> None:
        self.hardware = hardware
        self.hostname = hostname
        self.timing = timing or RuntimeTiming()
        self._instances: dict[str, _Instance] = {}
        self._generation = 0
        self._occupied_memory = 0
        self._listener: ChangeListener | None = None
        self._changed: dict[str, _Instance] = {}
        self._removed: list[str] = []
        self._first_change_at = 0.0
        self._flush_scheduled = False
        # Crash loops asked for before the instance exists (e.g. an image that always fails).
        self._crash_loops: dict[str, int] = {}
        # Images whose containers always crash-loop, whatever instance runs them (a broken
        # release: its rollout fails while the previous image still starts).
        self._failing_images: dict[str, int] = {}

    # What the agent calls ------------------------------------------------------------

    def listen(self, listener: ChangeListener | None) -> None:
        """Send status changes to `listener` (None drops them, as a dead agent would)."""
        self._listener = listener

    def apply(self, services: Sequence[service_spec_pb2.ServiceSpec]) -> plan_pb2.Plan:
        """Admits `services` as the complete desired set and, when admitted, converges."""
        running = {
            name: Running(i.fingerprint, i.gpu_uuids)
            for name, i in self._instances.items()
            if i.state != STOPPING
        }
        admission = admit(
            services,
            running,
            self.hardware,
            occupied_memory_bytes=self._occupied_memory,
            hostname=self.hostname,
        )
        if not admission.plan.admitted:
            return admission.plan
        self._generation += 1
        desired = {s.name: s for s in services}
        for name in sorted(set(running) - set(desired)):
            self._stop(self._instances[name])
        for action in admission.plan.actions:
            if action.kind == plan_pb2.ACTION_KIND_KEEP:
                self._instances[action.name].generation = self._generation
            elif action.kind in (plan_pb2.ACTION_KIND_START, plan_pb2.ACTION_KIND_RESTART):
                old = self._instances.get(action.name)
                if old is not None:
                    old.cancel_timer()
                self._start(desired[action.name], admission.gpus.get(action.name, ()))
        return admission.plan

    def statuses(self) -> list[service_status_pb2.InstanceStatus]:
        """The complete status of every instance the host runs."""
        return [self._status(i) for _, i in sorted(self._instances.items())]

    def status(self, name: str) -> service_status_pb2.InstanceStatus | None:
        instance = self._instances.get(name)
        return None if instance is None else self._status(instance)

    def specs(self) -> dict[str, service_spec_pb2.ServiceSpec]:
        """The spec each instance runs (those stopping left out), by name."""
        return {n: i.spec for n, i in sorted(self._instances.items()) if i.state != STOPPING}

    def names(self) -> list[str]:
        return sorted(self._instances)

    def used_memory_bytes(self) -> int:
        taken = sum(i.spec.resources.memory_bytes for i in self._instances.values())
        return taken + self._occupied_memory

    def gpu_used_bytes(self) -> dict[str, int]:
        used: dict[str, int] = {}
        for instance in self._instances.values():
            need = instance.spec.resources.gpus.vram_per_gpu_bytes
            for gpu_uuid in instance.gpu_uuids:
                whole = next(
                    (g.memory_total_bytes for g in self.hardware.gpus if g.uuid == gpu_uuid), 0
                )
                used[gpu_uuid] = used.get(gpu_uuid, 0) + (need or whole)
        return used

    # What tests do to the host -------------------------------------------------------

    def crash(self, name: str, *, exit_code: int = 137, loop: bool = False) -> None:
        """The container of `name` exits; with `loop`, it exits again after every start.

        Raises KeyError when the host runs no such instance.
        """
        instance = self._instances[name]
        if loop:
            instance.crash_loop_exit_code = exit_code
        self._exit(instance, exit_code)

    def turn_unhealthy(self, name: str) -> None:
        """The health check of `name` starts failing: like the agent, the runtime reports it
        UNHEALTHY, removes the container and restarts it under its restart policy.

        Raises KeyError when the host runs no such instance.
        """
        instance = self._instances[name]
        if instance.state != READY:
            return
        instance.cancel_timer()
        self._set(instance, UNHEALTHY, "health check failing: simulated")
        # The agent publishes UNHEALTHY before it acts, so it reaches the orchestrator.
        self._flush()
        self._restart_or_fail(instance, "turned unhealthy", failed=True)

    def crash_loop_on_start(self, name: str, *, exit_code: int = 1) -> None:
        """Every container of `name` started from now on exits `crash_after_s` after starting."""
        self._crash_loops[name] = exit_code
        if name in self._instances:
            self._instances[name].crash_loop_exit_code = exit_code

    def crash_loop_image(self, image: str, *, exit_code: int = 1) -> None:
        """Every container started from `image` from now on exits `crash_after_s` after
        starting, whichever instance it belongs to."""
        self._failing_images[image] = exit_code

    def occupy_memory(self, amount_bytes: int) -> None:
        """Something Ozwald does not run takes `amount_bytes` (admission counts it)."""
        self._occupied_memory = max(0, amount_bytes)

    def power_off(self) -> None:
        """The host died: every container is gone, without any report."""
        for instance in self._instances.values():
            instance.cancel_timer()
        self._instances.clear()
        self._changed.clear()
        self._removed.clear()

    # Lifecycle -------------------------------------------------------------------------

    def _start(self, spec: service_spec_pb2.ServiceSpec, gpus: Sequence[str]) -> None:
        instance = _Instance(
            spec=spec,
            fingerprint=fingerprint(spec),
            gpu_uuids=tuple(gpus),
            generation=self._generation,
            crash_loop_exit_code=self._crash_loops.get(
                spec.name, self._failing_images.get(spec.image)
            ),
        )
        self._instances[spec.name] = instance
        self._changed_now(instance)
        self._schedule_start_outcome(instance)

    def _schedule_start_outcome(self, instance: _Instance) -> None:
        loop = asyncio.get_running_loop()
        if instance.crash_loop_exit_code is not None:
            code = instance.crash_loop_exit_code
            instance.timer = loop.call_later(self.timing.crash_after_s, self._exit, instance, code)
        else:
            instance.timer = loop.call_later(self.timing.ready_after_s, self._ready, instance)

    def _ready(self, instance: _Instance) -> None:
        instance.timer = None
        self._set(instance, READY, "health check passed")

    def _exit(self, instance: _Instance, exit_code: int) -> None:
        instance.cancel_timer()
        if instance.state in (STOPPING, FAILED):
            return
        instance.exited = True
        instance.last_exit_code = exit_code
        self._restart_or_fail(instance, f"exited with code {exit_code}", failed=exit_code != 0)

    def _restart_or_fail(self, instance: _Instance, what: str, *, failed: bool) -> None:
        policy = instance.spec.restart_policy
        if policy.kind == service_spec_pb2.RESTART_POLICY_KIND_NO or (
            policy.kind == service_spec_pb2.RESTART_POLICY_KIND_ON_FAILURE and not failed
        ):
            self._set(instance, FAILED, f"{what}; restart policy says no")
            return
        if policy.max_retries and instance.restart_count >= policy.max_retries:
            self._set(instance, FAILED, f"{what}; used up its {policy.max_retries} restarts")
            return
        instance.restart_count += 1
        delay = self.timing.restart_after_s
        self._set(instance, RESTARTING, f"{what}; restarting in {delay:g} s")
        instance.timer = asyncio.get_running_loop().call_later(delay, self._restart, instance)

    def _restart(self, instance: _Instance) -> None:
        instance.timer = None
        instance.container_id = uuid.uuid4().hex + uuid.uuid4().hex
        self._set(instance, STARTING, "restarted; waiting for the health check")
        self._schedule_start_outcome(instance)

    def _stop(self, instance: _Instance) -> None:
        instance.cancel_timer()
        name = instance.spec.name
        if self.timing.stop_after_s <= 0:
            self._remove(name)
            return
        self._set(instance, STOPPING, "no longer desired; stopping")
        instance.timer = asyncio.get_running_loop().call_later(
            self.timing.stop_after_s, self._remove, name
        )

    def _remove(self, name: str) -> None:
        instance = self._instances.pop(name, None)
        if instance is None:
            return
        instance.cancel_timer()
        self._changed.pop(name, None)
        self._removed.append(name)
        self._schedule_flush()

    def _set(self, instance: _Instance, state: State.ValueType, reason: str) -> None:
        instance.state = state
        instance.reason = reason
        instance.state_since = time.time()
        self._changed_now(instance)

    # Reporting ---------------------------------------------------------------------------

    def _changed_now(self, instance: _Instance) -> None:
        name = instance.spec.name
        if name in self._removed:
            self._removed.remove(name)
        self._changed[name] = instance
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._first_change_at = time.time()
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        changed = [self._status(i) for _, i in sorted(self._changed.items())]
        removed, self._removed = self._removed, []
        self._changed.clear()
        if self._listener is not None and (changed or removed):
            self._listener(changed, removed, self._first_change_at)

    def _status(self, instance: _Instance) -> service_status_pb2.InstanceStatus:
        spec = instance.spec
        since = timestamp_pb2.Timestamp()
        since.FromNanoseconds(int(instance.state_since * 1e9))
        return service_status_pb2.InstanceStatus(
            realm=spec.realm,
            name=spec.name,
            variety=spec.variety,
            profile=spec.profile,
            state=instance.state,
            reason=instance.reason,
            state_since=since,
            container_id=instance.container_id,
            restart_count=instance.restart_count,
            last_exit_code=instance.last_exit_code,
            exited=instance.exited,
            gpu_uuids=instance.gpu_uuids,
            fingerprint=instance.fingerprint,
            persistent=spec.persistent,
            generation=instance.generation,
        )
