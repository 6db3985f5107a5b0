"""A real HTTP receiver on 127.0.0.1 for webhook tests: scripted answers, every delivery
kept with its arrival time and checked with ozwald_sdk.webhooks.verify_signature."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ozwald_sdk.webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookSignatureError,
    verify_signature,
)


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: str = ""
    delay_s: float = 0.0


@dataclass(frozen=True)
class Received:
    path: str
    event: str
    delivery_id: str
    arrived: float
    document: dict[str, Any]
    signature_error: str | None
    """None when the signature and timestamp verified."""


@dataclass
class Receiver:
    key: bytes
    port: int = 0
    script: dict[str, list[Answer]] = field(default_factory=dict)
    """Path -> answers, used in turn; the last one repeats; 200 when none."""
    received: list[Received] = field(default_factory=list)
    _lock: threading.Condition = field(default_factory=threading.Condition)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, path: str) -> Answer:
        with self._lock:
            answers = self.script.get(path) or [Answer()]
            return answers.pop(0) if len(answers) > 1 else answers[0]

    def keep(self, item: Received) -> None:
        with self._lock:
            self.received.append(item)
            self._lock.notify_all()

    def on(self, path: str, event: str | None = None) -> list[Received]:
        with self._lock:
            return [
                r for r in self.received if r.path == path and (event is None or r.event == event)
            ]

    def wait_for(
        self, path: str, event: str, count: int = 1, timeout: float = 20.0
    ) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.on(path, event)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{count} {event} deliveries to {path} expected; received: "
                        f"{[(r.path, r.event) for r in self.received]}"
                    )
                self._lock.wait(left)
            return self.on(path, event)


@contextmanager
def running_receiver(key: bytes) -> Iterator[Receiver]:
    receiver = Receiver(key)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            arrived = time.monotonic()
            try:
                verify_signature(
                    receiver.key,
                    self.headers.get(TIMESTAMP_HEADER),
                    self.headers.get(SIGNATURE_HEADER),
                    body,
                )
                error = None
            except WebhookSignatureError as e:
                error = str(e)
            receiver.keep(
                Received(
                    self.path,
                    self.headers.get(EVENT_HEADER, ""),
                    self.headers.get(DELIVERY_HEADER, ""),
                    arrived,
                    json.loads(body),
                    error,
                )
            )
            answer = receiver.answer(self.path)
            if answer.delay_s:
                time.sleep(answer.delay_s)
            payload = answer.body.encode()
            try:
                self.send_response(answer.status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the agent gave up waiting (a timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
