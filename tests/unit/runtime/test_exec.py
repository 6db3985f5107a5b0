"""Reading an exec's multiplexed output against a deadline, without an engine."""

from __future__ import annotations

import socket
import struct
import time

from ozwald_agent.runtime.exec import _demultiplex, _read_until


def _frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(payload)) + payload


def test_stdout_and_stderr_frames_are_joined_in_order() -> None:
    data = _frame(1, b"hello ") + _frame(2, b"warning\n") + _frame(1, b"done\n")

    assert _demultiplex(data) == "hello warning\ndone\n"


def test_a_truncated_frame_keeps_what_arrived() -> None:
    assert _demultiplex(_frame(1, b"complete\n") + _frame(1, b"cut off")[:-3]) == "complete\ncut "


def test_reading_stops_at_end_of_output() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(_frame(1, b"ok\n"))
        theirs.shutdown(socket.SHUT_WR)

        data, timed_out = _read_until(ours, time.monotonic() + 2)

    assert not timed_out
    assert _demultiplex(data) == "ok\n"


def test_reading_stops_at_the_deadline_when_output_never_ends() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(_frame(1, b"still going\n"))
        began = time.monotonic()

        data, timed_out = _read_until(ours, began + 0.2)
        elapsed = time.monotonic() - began

    assert timed_out
    assert _demultiplex(data) == "still going\n"
    assert 0.15 < elapsed < 1.5
