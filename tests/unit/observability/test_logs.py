from __future__ import annotations

import io
import json
import logging

from ozwald_sdk.logs import CorrelationIdFilter, JsonFormatter, TextFormatter, correlation_id


def _emit(formatter: logging.Formatter, **extra: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(CorrelationIdFilter())
    logger = logging.getLogger("ozwald.test.logs")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.info("served %s", "GetHostProfile", extra=extra)
    return stream.getvalue()


def test_json_line_carries_message_correlation_id_and_extras() -> None:
    token = correlation_id.set("cid-1")
    try:
        line = _emit(JsonFormatter(), duration_ms=1.5)
    finally:
        correlation_id.reset(token)
    entry = json.loads(line)
    assert entry["msg"] == "served GetHostProfile"
    assert entry["correlation_id"] == "cid-1"
    assert entry["duration_ms"] == 1.5
    assert entry["level"] == "INFO"
    assert entry["logger"] == "ozwald.test.logs"


def test_lines_outside_a_request_have_no_correlation_id() -> None:
    assert "correlation_id" not in json.loads(_emit(JsonFormatter()))
    assert "[cid=" not in _emit(TextFormatter())


def test_text_line_names_the_correlation_id() -> None:
    token = correlation_id.set("cid-2")
    try:
        line = _emit(TextFormatter())
    finally:
        correlation_id.reset(token)
    assert line.rstrip().endswith("[cid=cid-2]")
    assert "served GetHostProfile" in line
