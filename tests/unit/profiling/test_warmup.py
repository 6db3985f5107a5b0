"""The warm-up through the official openai client against a small real HTTP server that
speaks the OpenAI embeddings endpoint (and misbehaves when told to)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from ozwald.common.v1 import service_spec_pb2

from ozwald_agent.profiling.warmup import warm_up

EMBEDDINGS = service_spec_pb2.OPEN_AI_API_EMBEDDINGS


class FakeOpenAi:
    def __init__(self) -> None:
        self.bodies: list[dict[str, object]] = []
        self.models = ["minilm", "other"]
        self.fail_every = 0
        self.slow_s = 0.0


@pytest.fixture
def server() -> Iterator[tuple[str, FakeOpenAi]]:
    state = FakeOpenAi()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _json(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path != "/v1/models":
                self._json(404, {"error": "no"})
                return
            self._json(
                200,
                {"object": "list", "data": [{"id": m, "object": "model"} for m in state.models]},
            )

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.bodies.append(body)
            if state.slow_s:
                threading.Event().wait(state.slow_s)
            if self.path != "/v1/embeddings":
                self._json(404, {"error": {"message": "not here"}})
                return
            if state.fail_every and len(state.bodies) % state.fail_every == 0:
                self._json(500, {"error": {"message": "KV cache exploded"}})
                return
            self._json(
                200,
                {
                    "object": "list",
                    "model": body["model"],
                    "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
                    "usage": {"prompt_tokens": 3, "total_tokens": 3},
                },
            )

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", state
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_embeddings_warm_up_asks_the_first_listed_model_n_times(
    server: tuple[str, FakeOpenAi],
) -> None:
    url, state = server
    progress: list[int] = []

    result = warm_up(
        url,
        service_spec_pb2.OpenAiEndpoint(api=EMBEDDINGS),
        4,
        5.0,
        on_request=lambda done, _: progress.append(done),
    )

    assert (result.model, result.requests, result.errors, result.last_error) == ("minilm", 4, 0, "")
    assert progress == [1, 2, 3, 4]
    assert [b["model"] for b in state.bodies] == ["minilm"] * 4
    assert all(b["input"] for b in state.bodies)
    assert result.duration_s > 0


def test_a_declared_model_is_used_and_failures_are_counted_not_raised(
    server: tuple[str, FakeOpenAi],
) -> None:
    url, state = server
    state.fail_every = 2

    result = warm_up(url, service_spec_pb2.OpenAiEndpoint(api=EMBEDDINGS, model="other"), 4, 5.0)

    assert (result.requests, result.errors) == (4, 2)
    assert result.last_error.startswith("HTTP 500")
    assert "KV cache exploded" in result.last_error
    assert {b["model"] for b in state.bodies} == {"other"}


def test_a_request_that_takes_too_long_fails_at_its_timeout(
    server: tuple[str, FakeOpenAi],
) -> None:
    url, state = server
    state.slow_s = 1.0

    result = warm_up(url, service_spec_pb2.OpenAiEndpoint(api=EMBEDDINGS, model="m"), 1, 0.2)

    assert (result.requests, result.errors) == (1, 1)
    assert result.last_error == "no answer within the request timeout"


def test_no_model_listed_sends_nothing_and_says_why(server: tuple[str, FakeOpenAi]) -> None:
    url, state = server
    state.models = []

    result = warm_up(url, service_spec_pb2.OpenAiEndpoint(api=EMBEDDINGS), 3, 5.0)

    assert (result.requests, result.errors) == (0, 1)
    assert result.last_error == "no model to ask for: GET /v1/models lists no model"
    assert state.bodies == []


def test_cancelling_stops_before_the_next_request(server: tuple[str, FakeOpenAi]) -> None:
    url, state = server
    done: list[int] = []

    result = warm_up(
        url,
        service_spec_pb2.OpenAiEndpoint(api=EMBEDDINGS, model="m"),
        10,
        5.0,
        on_request=lambda n, _: done.append(n),
        cancelled=lambda: len(done) >= 2,
    )

    assert result.requests == 2
    assert len(state.bodies) == 2


def test_nothing_listens_is_a_connection_failure(server: tuple[str, FakeOpenAi]) -> None:
    result = warm_up(
        "http://127.0.0.1:9/v1", service_spec_pb2.OpenAiEndpoint(api=EMBEDDINGS, model="m"), 1, 2.0
    )

    assert (result.requests, result.errors) == (1, 1)
    assert result.last_error.startswith("connection failed")
