"""Instance statuses as text for people: the `ozwald status` table, the compact list of
`ozwald list_active_services`, and the progress lines of `--wait`.

Every line fits `width` columns: long cells are cut short with an ellipsis, the reason
first; `--json` has everything uncut.
"""

from __future__ import annotations

import datetime
import textwrap
from collections.abc import Iterable, Sequence

from ozwald.agent.v1 import service_status_pb2

from ozwald_sdk.cli.text import ELLIPSIS, INDENT, WIDTH, render_table

S = service_status_pb2
LOOPBACK = "127.0.0.1"
STATE_WIDTH = len("RESTARTING")
LOG_LINES_SHOWN = 5
RUNNING = (S.INSTANCE_STATE_STARTING, S.INSTANCE_STATE_READY, S.INSTANCE_STATE_UNHEALTHY)

_STATUS_HEADERS = ("SERVICE", "VARIETY", "STATE", "SINCE", "RESTARTS", "PORTALS", "REASON")
# Columns cut short, in turn, when a table is too wide: (column, narrowest width). The
# reason gives way first (a cut one is shown whole below the table unless the service
# is ready), then long names, endpoints and varieties.
_SERVICE, _VARIETY, _PORTALS, _REASON = 0, 1, 5, 6
_STATUS_SHRINK = (
    (_REASON, 16),
    (_SERVICE, 24),
    (_PORTALS, 13),
    (_REASON, 12),
    (_VARIETY, 11),
    (_SERVICE, 16),
    (_VARIETY, 0),
    (_PORTALS, 0),
    (_REASON, 0),
    (_SERVICE, 0),
)


def state_name(state: S.InstanceState.ValueType) -> str:
    return S.InstanceState.Name(state).removeprefix("INSTANCE_STATE_")


def service_label(status: S.InstanceStatus) -> str:
    return f"{status.realm}:{status.name}"


def age(status: S.InstanceStatus, now: datetime.datetime) -> str:
    """How long the instance has been in its state: `42s`, `5m`, `3h`, `2d`."""
    if not status.HasField("state_since"):
        return "-"
    since = status.state_since.ToDatetime(tzinfo=datetime.UTC)
    seconds = max(0, int((now - since).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def short_endpoint(endpoint: str) -> str:
    """`18080` for 127.0.0.1:18080 (the default), else the whole address."""
    host, _, port = endpoint.rpartition(":")
    return port if host == LOOPBACK else endpoint


def render_status_table(
    instances: Sequence[S.InstanceStatus], now: datetime.datetime, width: int = WIDTH
) -> str:
    """One row per instance, then the last log lines of each failed one."""
    if not instances:
        return "No services on this host.\n"
    rows = [
        [
            service_label(s),
            "/".join(filter(None, (s.variety, s.profile))) or "-",
            state_name(s.state),
            age(s, now),
            str(s.restart_count),
            ",".join(short_endpoint(e) for e in s.endpoints) or "-",
            s.reason or "-",
        ]
        for s in instances
    ]
    out = fit_table(_STATUS_HEADERS, rows, _STATUS_SHRINK, right={4}, width=width)
    cut_short = [
        s
        for s, line in zip(instances, out[1:], strict=True)
        if s.state not in (S.INSTANCE_STATE_READY, S.INSTANCE_STATE_FAILED)
        and not line.endswith(s.reason)
    ]
    if cut_short:
        out.append("")
        for status in cut_short:
            out.extend(
                textwrap.wrap(
                    f"{service_label(status)} is {state_name(status.state)}: {status.reason}",
                    width=width,
                    subsequent_indent=INDENT,
                    break_on_hyphens=False,
                )
            )
    for status in instances:
        if status.state == S.INSTANCE_STATE_FAILED:
            out.append("")
            out.extend(failed_lines(status, width))
    return "\n".join(out) + "\n"


def failed_lines(status: S.InstanceStatus, width: int = WIDTH) -> list[str]:
    """`default:echo failed: REASON`, then its last few log lines, indented."""
    out = [cut(f"{service_label(status)} failed: {status.reason or 'no reason given'}", width)]
    lines = list(status.last_log_lines)[-LOG_LINES_SHOWN:]
    if lines:
        out.append(f"{INDENT}last log lines:")
        out.extend(cut(f"{INDENT * 2}{line}", width) for line in lines)
    else:
        out.append(f"{INDENT}no log lines kept")
    return out


def render_active(instances: Iterable[S.InstanceStatus], width: int = WIDTH) -> str:
    """Running instances (starting, ready, unhealthy): service, state, endpoints."""
    rows = [
        [service_label(s), state_name(s.state), ", ".join(s.endpoints) or "-"]
        for s in instances
        if s.state in RUNNING
    ]
    if not rows:
        return "No service is running.\n"
    headers = ("SERVICE", "STATE", "ENDPOINTS")
    return "\n".join(fit_table(headers, rows, ((2, 12), (0, 16)), width=width)) + "\n"


def progress_line(status: S.InstanceStatus, label_width: int, width: int = WIDTH) -> str:
    """`  default:echo  STARTING    container started; waiting for health`"""
    text = (
        f"{INDENT}{service_label(status):<{label_width}}  "
        f"{state_name(status.state):<{STATE_WIDTH}}  {status.reason}"
    )
    return cut(text.rstrip(), width)


def fit_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    shrink: Sequence[tuple[int, int]],
    *,
    right: Iterable[int] = (),
    width: int = WIDTH,
) -> list[str]:
    """render_table, with as many columns cut short as it takes to fit `width`: each
    `(column, narrowest)` in turn gives up what it can above its narrowest width."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    overflow = len(INDENT) + sum(widths) + 2 * (len(widths) - 1) - width
    for column, narrowest in shrink:
        if overflow <= 0:
            break
        give = min(overflow, max(0, widths[column] - max(narrowest, len(headers[column]))))
        widths[column] -= give
        overflow -= give
    cut_rows = [[cut(cell, w) for cell, w in zip(row, widths, strict=True)] for row in rows]
    lines = render_table(headers, cut_rows, shrink=len(headers) - 1, right=set(right), width=width)
    return [cut(line, width) for line in lines]


def cut(text: str, width: int) -> str:
    """`text`, cut short with an ellipsis when longer than `width`: after the last whole
    word when that loses a few characters at most, else mid-word."""
    if len(text) <= width:
        return text
    kept = text[: width - 1]
    space = kept.rfind(" ")
    if space > 0 and len(kept) - space <= 5:
        kept = kept[:space].rstrip(" ;,:")
    return kept + ELLIPSIS
