"""A simulated agent: speaks AgentLinkService.Connect like ozwald-agent, over mutual TLS.

It registers with the HostProfile of its simulated hardware, heartbeats at the interval
the orchestrator gives, applies each Assignment to a SimulatedRuntime and answers with an
AssignmentResult, and reports its instances' status changes as InstanceReports. A broken
stream is reopened with backoff; the new Register carries the last applied assignment
version and the complete statuses, exactly as the protocol asks of a real agent.

What a test can do to it, besides starting and stopping it:

- `partition()` / `heal()`: the link goes silent both ways. Nothing is sent (heartbeats are
  skipped, status changes wait), what arrives waits, and a stream the orchestrator closes
  meanwhile is only noticed after the heal, as with a network that drops everything.
- `stop()`: the agent dies (its stream closes). Its containers keep running, as they do
  when the agent process is killed. `stop(power_off=True)` takes them down too (the host
  died); like a real agent, which keeps its desired set in its state store, it starts them
  again when it comes back. `stop(wipe=True)` loses that too (a reinstalled host).
  `start()` brings the agent back, which registers again with what runs.
- through `runtime`: crash an instance, make memory vanish so admission refuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import grpc
import grpc.aio
from google.protobuf import timestamp_pb2
from ozwald.agent.v1 import service_status_pb2
from ozwald.common.v1 import host_profile_pb2, service_spec_pb2
from ozwald.orchestrator.v1 import agent_link_service_pb2 as link_pb2
from ozwald.orchestrator.v1 import agent_link_service_pb2_grpc as link_grpc

from ozwald_testbed.simulated_hardware import SimulatedHardware
from ozwald_testbed.simulated_runtime import RuntimeTiming, SimulatedRuntime

logger = logging.getLogger(__name__)

# Reconnect waits as the real agent's (ozwald_agent.fleet.link), jittered so that thousands
# of agents do not redial in lockstep.
RECONNECT_INITIAL_S = 0.5
RECONNECT_MAX_S = 10.0


@dataclass(frozen=True)
class AgentCredentials:
    """PEM material for the agent's side of mutual TLS."""

    # The CA that signed the orchestrator's certificate.
    root_certificates: bytes
    # The agent's certificate (CN = host id, OU = agent) and its key.
    certificate_chain: bytes
    private_key: bytes

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.root_certificates,
            private_key=self.private_key,
            certificate_chain=self.certificate_chain,
        )


class SimulatedAgent:
    """One simulated host's agent; all of it runs on the caller's event loop."""

    def __init__(
        self,
        host_id: str,
        hardware: SimulatedHardware,
        *,
        target: str,
        credentials: AgentCredentials,
        labels: Mapping[str, str] | None = None,
        timing: RuntimeTiming | None = None,
        channel_options: tuple[tuple[str, str | int], ...] = (),
    ) -> None:
        self.host_id = host_id
        self.hardware = hardware
        self.labels = dict(labels or {})
        self.runtime = SimulatedRuntime(hardware, hostname=host_id, timing=timing)
        self._target = target
        self._credentials = credentials
        self._channel_options = channel_options
        self._channel: grpc.aio.Channel | None = None
        self._task: asyncio.Task[None] | None = None
        # What goes up the current stream, in order; one writer task drains it, because
        # grpc.aio allows one write in flight per stream and nothing should wait on it.
        self._outbox: asyncio.Queue[link_pb2.ConnectRequest] = asyncio.Queue()
        self._connected = asyncio.Event()
        self._healed = asyncio.Event()
        self._healed.set()
        self._held_changes: dict[str, service_status_pb2.InstanceStatus] = {}
        self._held_removed: set[str] = set()
        self._held_since = 0.0
        self.applied_assignment_version = 0
        # The last admitted assignment's services: the agent's persisted desired set.
        self._desired: list[service_spec_pb2.ServiceSpec] = []
        self._powered_off = False
        self.heartbeat_interval_s = 1.0
        self.heartbeat_ttl_s = 3.0
        self.session_id = ""
        # What happened, for tests and benchmarks to look at.
        self.sessions = 0
        self.heartbeats_sent = 0
        self.reports_sent = 0
        self.assignments_received = 0
        self.refusals_sent = 0
        self.last_error: grpc.aio.AioRpcError | None = None
        self.last_refused_version = 0
        # Called with each InstanceReport and the agent's clock just before it is written.
        self.on_report: Callable[[link_pb2.InstanceReport, float], None] | None = None

    # Life ----------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def partitioned(self) -> bool:
        return not self._healed.is_set()

    def start(self) -> None:
        """Dials the orchestrator (again) and keeps the stream open until `stop()`."""
        if self.running:
            return
        self._channel = grpc.aio.secure_channel(
            self._target,
            self._credentials.channel_credentials(),
            options=self._channel_options,
        )
        if self._powered_off:
            self._powered_off = False
            self.runtime.apply(self._desired)
        self.runtime.listen(self._on_runtime_change)
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"simulated-agent-{self.host_id}"
        )

    async def stop(self, *, power_off: bool = False, wipe: bool = False) -> None:
        """The agent dies: its stream closes mid-flight; `power_off` takes the host down too,
        `wipe` also its state (applied version and desired set)."""
        self.runtime.listen(None)
        if power_off or wipe:
            self.runtime.power_off()
            self._powered_off = True
        if wipe:
            self._desired = []
            self.applied_assignment_version = 0
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close(grace=None)
        self._connected.clear()
        self._held_changes.clear()
        self._held_removed.clear()

    def partition(self) -> None:
        """Cut the link both ways without closing anything."""
        self._healed.clear()

    def heal(self) -> None:
        """Restore the link; what waited flows again."""
        self._healed.set()
        if self._held_changes or self._held_removed:
            changed = [s for _, s in sorted(self._held_changes.items())]
            removed = sorted(self._held_removed)
            self._held_changes.clear()
            self._held_removed.clear()
            self._send_report(changed, removed, self._held_since)

    def report_profile(self) -> None:
        """Sends a fresh HostProfile (what runs and what is occupied now), as an agent does
        when its host changes materially."""
        if self._connected.is_set():
            report = link_pb2.ProfileReport(profile=self._profile())
            self._outbox.put_nowait(link_pb2.ConnectRequest(profile=report))

    async def wait_connected(self, timeout: float) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout)

    # The stream ----------------------------------------------------------------------------

    async def _run(self) -> None:
        wait = RECONNECT_INITIAL_S
        while True:
            try:
                await self._session()
                wait = RECONNECT_INITIAL_S
            except grpc.aio.AioRpcError as e:
                self.last_error = e
                if self._healed.is_set():
                    logger.info(
                        "simulated agent %s: stream ended: %s %s",
                        self.host_id,
                        e.code().name,
                        e.details(),
                    )
            finally:
                self._connected.clear()
            # A partitioned agent cannot tell that its stream broke until the link is back.
            await self._healed.wait()
            await asyncio.sleep(wait * random.uniform(0.5, 1.0))
            wait = min(RECONNECT_MAX_S, wait * 2)

    async def _session(self) -> None:
        assert self._channel is not None
        stub = link_grpc.AgentLinkServiceStub(self._channel)
        call = stub.Connect()
        self._outbox = asyncio.Queue()
        loop = asyncio.get_running_loop()
        tasks: list[asyncio.Task[None]] = []
        try:
            await call.write(link_pb2.ConnectRequest(register=self._register()))
            first = await call.read()
            if not isinstance(first, link_pb2.ConnectResponse):
                return
            if first.WhichOneof("message") != "registered":
                logger.warning("simulated agent %s: expected Registered first", self.host_id)
                return
            await self._healed.wait()
            self._on_registered(first.registered)
            tasks.append(loop.create_task(self._writer(call, self._outbox)))
            tasks.append(loop.create_task(self._heartbeats(self._outbox)))
            while True:
                response = await call.read()
                if not isinstance(response, link_pb2.ConnectResponse):
                    return
                await self._healed.wait()
                if response.WhichOneof("message") == "assignment":
                    self._on_assignment(response.assignment)
        finally:
            self._connected.clear()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, *_STREAM_ENDED):
                    await task
            call.cancel()

    def _register(self) -> link_pb2.Register:
        return link_pb2.Register(
            host_id=self.host_id,
            profile=self._profile(),
            labels=self.labels,
            applied_assignment_version=self.applied_assignment_version,
            instances=self.runtime.statuses(),
        )

    def _profile(self) -> host_profile_pb2.HostProfile:
        return self.hardware.profile(
            self.host_id,
            memory_available_bytes=self.hardware.memory_total_bytes
            - self.runtime.used_memory_bytes(),
            gpu_used_bytes=self.runtime.gpu_used_bytes(),
            collected_at=time.time(),
        )

    def _on_registered(self, registered: link_pb2.Registered) -> None:
        self.sessions += 1
        self.session_id = registered.session_id
        interval = registered.heartbeat_interval.ToNanoseconds() / 1e9
        ttl = registered.heartbeat_ttl.ToNanoseconds() / 1e9
        self.heartbeat_interval_s = interval if interval > 0 else self.heartbeat_interval_s
        self.heartbeat_ttl_s = ttl if ttl > 0 else self.heartbeat_ttl_s
        self._connected.set()

    async def _heartbeats(self, outbox: asyncio.Queue[link_pb2.ConnectRequest]) -> None:
        """One heartbeat every interval on a fixed schedule, as the real agent's thread
        sends them: a slow write delays the next message, never the schedule."""
        loop = asyncio.get_running_loop()
        sequence = 0
        # Agents that registered together should not heartbeat together forever.
        due = loop.time() + random.uniform(0, self.heartbeat_interval_s)
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            due += self.heartbeat_interval_s
            if self._healed.is_set():
                sequence += 1
                beat = link_pb2.Heartbeat(sequence=sequence, sent_at=_now())
                outbox.put_nowait(link_pb2.ConnectRequest(heartbeat=beat))

    async def _writer(
        self,
        call: grpc.aio.StreamStreamCall[link_pb2.ConnectRequest, link_pb2.ConnectResponse],
        outbox: asyncio.Queue[link_pb2.ConnectRequest],
    ) -> None:
        while True:
            request = await outbox.get()
            kind = request.WhichOneof("message")
            if kind == "instances" and self.on_report is not None:
                self.on_report(request.instances, time.time())
            await call.write(request)
            if kind == "heartbeat":
                self.heartbeats_sent += 1
            elif kind == "instances":
                self.reports_sent += 1

    def _on_assignment(self, assignment: link_pb2.Assignment) -> None:
        self.assignments_received += 1
        version = assignment.version
        wanted = {s.name for s in assignment.services}
        if version == self.applied_assignment_version and wanted == set(self.runtime.names()):
            # As the real agent does: an applied version is answered without a new plan.
            result = link_pb2.AssignmentResult(version=version, admitted=True)
        else:
            plan = self.runtime.apply(assignment.services)
            # The plan goes up either way: admitted, its actions say which spec each
            # instance now runs; refused (atomic: what ran keeps running), why.
            result = link_pb2.AssignmentResult(version=version, admitted=plan.admitted, plan=plan)
            if plan.admitted:
                self.applied_assignment_version = version
                self._desired = list(assignment.services)
            else:
                self.refusals_sent += 1
                self.last_refused_version = version
        self._outbox.put_nowait(link_pb2.ConnectRequest(assignment_result=result))

    # Reports -------------------------------------------------------------------------------

    def _on_runtime_change(
        self,
        changed: list[service_status_pb2.InstanceStatus],
        removed: list[str],
        observed_at: float,
    ) -> None:
        if not self._connected.is_set():
            # Nobody to tell: the next Register carries the complete statuses.
            return
        if not self._healed.is_set():
            if not self._held_changes and not self._held_removed:
                self._held_since = observed_at
            for status in changed:
                self._held_removed.discard(status.name)
                self._held_changes[status.name] = status
            for name in removed:
                self._held_changes.pop(name, None)
                self._held_removed.add(name)
            return
        self._send_report(changed, removed, observed_at)

    def _send_report(
        self,
        changed: list[service_status_pb2.InstanceStatus],
        removed: list[str],
        observed_at: float,
    ) -> None:
        if not self._connected.is_set():
            return
        report = link_pb2.InstanceReport(
            instances=changed, removed=removed, observed_at=_timestamp(observed_at)
        )
        self._outbox.put_nowait(link_pb2.ConnectRequest(instances=report))


# What writing to a stream that has ended raises. What was queued is lost with the stream;
# the next Register carries the complete statuses.
_STREAM_ENDED = (grpc.aio.AioRpcError, asyncio.InvalidStateError, grpc.aio.UsageError)


def _now() -> timestamp_pb2.Timestamp:
    return _timestamp(time.time())


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp
