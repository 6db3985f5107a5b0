"""One agent's open stream: what the orchestrator sends down it, in order.

The servicer's writer task drains `outbox`; anything may enqueue without awaiting. A
newer stream for the same host replaces this one: `close` ends the writer and the
servicer then ends the call.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid

from ozwald.orchestrator.v1 import agent_link_service_pb2

_numbers = itertools.count(1)


class AgentSession:
    """The orchestrator's side of one Connect stream."""

    def __init__(self, host_id: str, peer: str) -> None:
        self.host_id = host_id
        self.peer = peer
        self.session_id = f"{uuid.uuid4().hex[:12]}-{next(_numbers)}"
        self.outbox: asyncio.Queue[agent_link_service_pb2.ConnectResponse | None] = asyncio.Queue()
        self.closed = False
        # Why the stream was closed from this side, for the agent and the log.
        self.close_reason = ""

    def send(self, message: agent_link_service_pb2.ConnectResponse) -> None:
        if not self.closed:
            self.outbox.put_nowait(message)

    def close(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self.outbox.put_nowait(None)
