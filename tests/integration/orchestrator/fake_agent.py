"""A scripted agent that speaks AgentLinkService to a real orchestrator (no Docker).

It registers with a made-up host profile, sends heartbeats on its own task, and lets the
test answer assignments and report instance states as a real agent would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

import grpc
from ozwald.agent.v1 import plan_pb2, service_status_pb2
from ozwald.common.v1 import host_profile_pb2
from ozwald.orchestrator.v1 import agent_link_service_pb2, agent_link_service_pb2_grpc

from ozwald_sdk.fingerprint import fingerprint

GIB = 1024**3


def cpu_profile(
    hostname: str, cores: int = 8, memory_gib: int = 16
) -> host_profile_pb2.HostProfile:
    return host_profile_pb2.HostProfile(
        hostname=hostname,
        cpu=host_profile_pb2.CpuInfo(logical_cores=cores, usable_cores=cores),
        memory=host_profile_pb2.MemoryInfo(
            total_bytes=memory_gib * GIB, available_bytes=memory_gib * GIB
        ),
    )


class FakeAgent:
    """One host's agent: `connect()`, then answer and report; `close()` ends the stream."""

    def __init__(
        self,
        host_id: str,
        target: str,
        credentials: grpc.ChannelCredentials,
        *,
        labels: dict[str, str] | None = None,
        heartbeat_interval: float = 0.2,
    ) -> None:
        self.host_id = host_id
        self.target = target
        self.credentials = credentials
        self.labels = labels or {}
        self.heartbeat_interval = heartbeat_interval
        self.applied_version = 0
        # What the agent runs, by service name.
        self.running: dict[str, service_status_pb2.InstanceStatus] = {}
        self.assignments: asyncio.Queue[agent_link_service_pb2.Assignment] = asyncio.Queue()
        self.registered: agent_link_service_pb2.Registered | None = None
        self.heartbeats_paused = False
        self._channel: grpc.aio.Channel | None = None
        self._call: (
            grpc.aio.StreamStreamCall[
                agent_link_service_pb2.ConnectRequest, agent_link_service_pb2.ConnectResponse
            ]
            | None
        ) = None
        self._outbox: asyncio.Queue[agent_link_service_pb2.ConnectRequest | None] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self.ended: grpc.aio.AioRpcError | None = None

    async def connect(self, timeout: float = 10.0) -> agent_link_service_pb2.Registered:
        self._channel = grpc.aio.secure_channel(
            self.target,
            self.credentials,
            options=[("grpc.ssl_target_name_override", "localhost")],
        )
        stub = agent_link_service_pb2_grpc.AgentLinkServiceStub(self._channel)
        self._outbox = asyncio.Queue()
        register = agent_link_service_pb2.Register(
            host_id=self.host_id,
            profile=cpu_profile(self.host_id),
            labels=self.labels,
            applied_assignment_version=self.applied_version,
            instances=list(self.running.values()),
        )
        self._outbox.put_nowait(agent_link_service_pb2.ConnectRequest(register=register))
        self._call = stub.Connect(self._requests())
        first = await asyncio.wait_for(self._call.read(), timeout)
        assert isinstance(first, agent_link_service_pb2.ConnectResponse), first
        assert first.WhichOneof("message") == "registered", first
        self.registered = first.registered
        self._tasks = [
            asyncio.create_task(self._read()),
            asyncio.create_task(self._heartbeat()),
        ]
        return first.registered

    async def _requests(self) -> AsyncIterator[agent_link_service_pb2.ConnectRequest]:
        while True:
            message = await self._outbox.get()
            if message is None:
                return
            yield message

    async def _read(self) -> None:
        assert self._call is not None
        try:
            while True:
                response = await self._call.read()
                if response is grpc.aio.EOF:
                    return
                assert isinstance(response, agent_link_service_pb2.ConnectResponse)
                if response.WhichOneof("message") == "assignment":
                    self.assignments.put_nowait(response.assignment)
        except grpc.aio.AioRpcError as e:
            self.ended = e

    async def _heartbeat(self) -> None:
        sequence = 0
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            if self.heartbeats_paused:
                continue
            sequence += 1
            self._outbox.put_nowait(
                agent_link_service_pb2.ConnectRequest(
                    heartbeat=agent_link_service_pb2.Heartbeat(sequence=sequence)
                )
            )

    async def next_assignment(self, timeout: float = 10.0) -> agent_link_service_pb2.Assignment:
        return await asyncio.wait_for(self.assignments.get(), timeout)

    def admit(
        self,
        assignment: agent_link_service_pb2.Assignment,
        state: service_status_pb2.InstanceState.ValueType = service_status_pb2.INSTANCE_STATE_READY,
    ) -> None:
        """Apply an assignment as the agent would: answer admitted, then run its services
        in `state`, stop what it no longer lists, and report both."""
        plan = plan_pb2.Plan(admitted=True)
        statuses = []
        for spec in assignment.services:
            plan.actions.add(
                kind=plan_pb2.ACTION_KIND_START,
                realm=spec.realm,
                name=spec.name,
                fingerprint=fingerprint(spec),
            )
            status = service_status_pb2.InstanceStatus(
                realm=spec.realm,
                name=spec.name,
                variety=spec.variety,
                state=state,
                fingerprint=fingerprint(spec),
            )
            self.running[spec.name] = status
            statuses.append(status)
        removed = [
            name for name in self.running if name not in {s.name for s in assignment.services}
        ]
        for name in removed:
            del self.running[name]
        self.applied_version = assignment.version
        self.send(
            agent_link_service_pb2.ConnectRequest(
                assignment_result=agent_link_service_pb2.AssignmentResult(
                    version=assignment.version, admitted=True, plan=plan
                )
            )
        )
        self.send(
            agent_link_service_pb2.ConnectRequest(
                instances=agent_link_service_pb2.InstanceReport(instances=statuses, removed=removed)
            )
        )

    def refuse(self, assignment: agent_link_service_pb2.Assignment, message: str) -> None:
        plan = plan_pb2.Plan(admitted=False)
        for spec in assignment.services:
            plan.refusals.add(
                realm=spec.realm,
                name=spec.name,
                reason=plan_pb2.REFUSAL_REASON_IMAGE_MISSING,
                message=message,
            )
        self.send(
            agent_link_service_pb2.ConnectRequest(
                assignment_result=agent_link_service_pb2.AssignmentResult(
                    version=assignment.version, admitted=False, plan=plan
                )
            )
        )

    def report(self, statuses: Sequence[service_status_pb2.InstanceStatus]) -> None:
        for status in statuses:
            self.running[status.name] = status
        self.send(
            agent_link_service_pb2.ConnectRequest(
                instances=agent_link_service_pb2.InstanceReport(instances=list(statuses))
            )
        )

    def send(self, message: agent_link_service_pb2.ConnectRequest) -> None:
        self._outbox.put_nowait(message)

    def finish(self) -> None:
        """Half-close: send nothing more and say so, as an agent ending the stream in
        order does; the stream stays open for the orchestrator's answer."""
        self._outbox.put_nowait(None)

    async def close(self) -> None:
        """End the stream (as a stopped agent would) and the channel."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._call is not None:
            self._call.cancel()
        if self._channel is not None:
            await self._channel.close()
        self._channel = None
        self._call = None
