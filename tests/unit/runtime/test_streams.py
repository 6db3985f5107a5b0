"""Line splitting of engine byte streams, and iterators another thread can stop."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from ozwald_agent.runtime.streams import StoppableIterator, split_lines


def test_lines_are_rejoined_across_chunks() -> None:
    chunks = [b"first li", b"ne\nsecond\r\nthi", b"rd\n", b"", b"unfinished"]

    assert list(split_lines(iter(chunks))) == ["first line", "second", "third", "unfinished"]


def test_bad_utf8_is_replaced_not_fatal() -> None:
    assert list(split_lines(iter([b"caf\xe9\n"]))) == ["caf\ufffd"]


class _BlockingStream:
    """Like the SDK's CancellableStream: reading blocks until data or close()."""

    def __init__(self) -> None:
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        yield b"hello\n"
        self.closed.wait(10)

    def close(self) -> None:
        self.closed.set()


def test_close_from_another_thread_ends_a_blocked_iteration() -> None:
    stream = _BlockingStream()

    def produce(follower: StoppableIterator[str]) -> Iterator[str]:
        follower.attach(stream)
        return split_lines(iter(stream))

    lines = StoppableIterator(produce)
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(lines))
    reader.start()
    while not seen:
        reader.join(0.01)

    lines.close()
    reader.join(2)

    assert not reader.is_alive()
    assert seen == ["hello"]
    assert stream.closed.is_set()
    assert lines.closed


def test_a_resource_attached_after_close_is_closed_at_once() -> None:
    stream = _BlockingStream()
    lines: StoppableIterator[str] = StoppableIterator(lambda _: iter(()))
    lines.close()

    lines.attach(stream)

    assert stream.closed.is_set()
