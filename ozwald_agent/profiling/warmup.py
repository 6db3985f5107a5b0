"""The warm-up load: a bounded number of requests through a service's OpenAI API.

A model server's memory after start is not its memory under load: vLLM allocates
activation and sampling buffers on its first requests. The warm-up sends `requests`
small requests, one after the other, with the official `openai` client, to the copy's own
address (straight to the container over its network, as health probes go), so the
footprint's peaks include what serving costs.

- The model is the service's declared `openai.model`, else the first id `GET /v1/models`
  lists (what vLLM serves under `--served-model-name`, or the model path).
- Every request has its own timeout; the client never retries (a retry would hide a
  failure and change the load). A failed request is counted and the warm-up goes on:
  the footprint says how many failed and the last error.
- `cancelled()` is asked before every request, so a cancelled profiling stops within one
  request's timeout.
- The HTTP client ignores proxy settings of the agent's environment: the copy is on a
  local bridge, and a proxy would not reach it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import openai
from ozwald.common.v1 import service_spec_pb2

API_KEY = "ozwald-profile"  # vLLM without --api-key accepts any key; the client needs one
EMBEDDING_INPUT = "Ozwald measures how much this service needs while it answers."
PROMPT = "Ozwald is warming this service up. Say hello in five words:"
MAX_TOKENS = 16
_SNIPPET = 200


@dataclass
class WarmUpResult:
    api: service_spec_pb2.OpenAiApi.ValueType
    model: str = ""
    requests: int = 0
    errors: int = 0
    duration_s: float = 0.0
    last_error: str = ""


def warm_up(
    base_url: str,
    endpoint: service_spec_pb2.OpenAiEndpoint,
    requests: int,
    timeout_s: float,
    *,
    on_request: Callable[[int, WarmUpResult], None] = lambda done, result: None,
    cancelled: Callable[[], bool] = lambda: False,
) -> WarmUpResult:
    """Sends `requests` requests to `base_url` (e.g. `http://172.18.0.5:8000/v1`).

    `on_request(done, result)` is called after each one. When no model can be found
    (`GET /v1/models` fails), no request is sent and the result carries the error.
    """
    result = WarmUpResult(api=endpoint.api)
    with httpx.Client(trust_env=False, timeout=timeout_s) as http:
        client = openai.OpenAI(
            base_url=base_url,
            api_key=API_KEY,
            timeout=timeout_s,
            max_retries=0,
            http_client=http,
        )
        began = time.monotonic()
        try:
            result.model = endpoint.model or _first_model(client)
        except (openai.OpenAIError, LookupError) as e:
            result.errors += 1
            result.last_error = f"no model to ask for: {_describe(e)}"
            result.duration_s = time.monotonic() - began
            return result
        send = _sender(client, endpoint.api, result.model)
        for done in range(1, requests + 1):
            if cancelled():
                break
            result.requests += 1
            try:
                send()
            except openai.OpenAIError as e:
                result.errors += 1
                result.last_error = _describe(e)
            result.duration_s = time.monotonic() - began
            on_request(done, result)
        result.duration_s = time.monotonic() - began
    return result


def _first_model(client: openai.OpenAI) -> str:
    for model in client.models.list():
        return model.id
    raise LookupError("GET /v1/models lists no model")


def _sender(
    client: openai.OpenAI, api: service_spec_pb2.OpenAiApi.ValueType, model: str
) -> Callable[[], object]:
    if api == service_spec_pb2.OPEN_AI_API_EMBEDDINGS:
        return lambda: client.embeddings.create(model=model, input=[EMBEDDING_INPUT])
    if api == service_spec_pb2.OPEN_AI_API_COMPLETIONS:
        return lambda: client.completions.create(model=model, prompt=PROMPT, max_tokens=MAX_TOKENS)
    if api == service_spec_pb2.OPEN_AI_API_CHAT:
        return lambda: client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": PROMPT}],
            max_tokens=MAX_TOKENS,
        )
    raise ValueError(f"no warm-up for OpenAI API {api}")


def _describe(error: BaseException) -> str:
    if isinstance(error, openai.APIStatusError):
        body = error.response.text.strip().splitlines()
        first = body[0][:_SNIPPET] if body else ""
        return f"HTTP {error.status_code}" + (f": {first}" if first else "")
    if isinstance(error, openai.APITimeoutError):
        return "no answer within the request timeout"
    if isinstance(error, openai.APIConnectionError):
        cause = error.__cause__
        return f"connection failed: {cause}" if cause else "connection failed"
    return str(error) or type(error).__name__
