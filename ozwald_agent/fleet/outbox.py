"""The requests of one stream: threads put them here, gRPC takes them in order.

The sync gRPC client consumes the request iterator on a thread of its own, so this is a
queue whose iterator blocks until the next request or `close()`, which ends the stream's
sending side.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator

from ozwald.orchestrator.v1 import agent_link_service_pb2 as link_pb2

_END = object()


class Outbox:
    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[link_pb2.ConnectRequest | object] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._heartbeat_waiting = False

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, request: link_pb2.ConnectRequest) -> None:
        with self._lock:
            if not self._closed:
                self._queue.put(request)

    def put_heartbeat(self, make: Callable[[], link_pb2.ConnectRequest]) -> bool:
        """Queues a heartbeat unless the last one is still waiting to be sent: behind a
        stalled connection, a pile of heartbeats would say nothing newer than one."""
        with self._lock:
            if self._closed or self._heartbeat_waiting:
                return False
            self._heartbeat_waiting = True
            self._queue.put(make())
            return True

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._queue.put(_END)

    def requests(self) -> Iterator[link_pb2.ConnectRequest]:
        while True:
            item = self._queue.get()
            if item is _END or not isinstance(item, link_pb2.ConnectRequest):
                return
            if item.HasField("heartbeat"):
                with self._lock:
                    self._heartbeat_waiting = False
            yield item
