"""Structured logging shared by every Ozwald process.

Every line that belongs to a request carries that request's correlation id, taken from
the `x-ozwald-correlation-id` gRPC metadata, so one grep follows a request from the CLI
through agent, orchestrator and gateway. Lines are JSON when stderr is not a terminal.
"""

from __future__ import annotations

import argparse
import contextvars
import datetime
import json
import logging
import sys
from typing import Literal

LogFormat = Literal["json", "text", "auto"]

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "ozwald_correlation_id", default=None
)

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)


class CorrelationIdFilter(logging.Filter):
    """Stamps the current request's correlation id onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = correlation_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, correlation id, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        cid = getattr(record, "correlation_id", None)
        if cid:
            entry["correlation_id"] = cid
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and key != "correlation_id":
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """Human-readable lines for a terminal, with the correlation id when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        cid = getattr(record, "correlation_id", None)
        return f"{line} [cid={cid}]" if cid else line


def add_logging_options(parser: argparse.ArgumentParser) -> None:
    """--log-level and --log-format, which every Ozwald server passes to configure_logging."""
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING"],
        help="least severe log lines to write (default: %(default)s)",
    )
    parser.add_argument(
        "--log-format",
        default="auto",
        choices=["auto", "json", "text"],
        help="log line format; auto is JSON unless stderr is a terminal (default: %(default)s)",
    )


def configure_logging(level: str = "INFO", fmt: LogFormat = "auto") -> None:
    """Route the root logger to stderr in the chosen format (JSON unless on a terminal)."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    handler.addFilter(CorrelationIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
