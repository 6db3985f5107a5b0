"""Blocking iterators over engine streams that another thread can stop with `close()`."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Protocol, Self, TypeVar

T_co = TypeVar("T_co", covariant=True)


class Closeable(Protocol):
    def close(self) -> None: ...


class StoppableIterator(Iterator[T_co]):
    """Iterates `produce()` until it ends or `close()` is called (from any thread).

    `produce` receives the iterator itself so it can register the stream it reads
    (`attach`), which `close()` then shuts to wake a blocked read, and check `closed`.
    """

    def __init__(self, produce: Callable[[StoppableIterator[T_co]], Iterator[T_co]]) -> None:
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._resource: Closeable | None = None
        self._items = produce(self)

    @property
    def closed(self) -> bool:
        return self._stopped.is_set()

    def attach(self, resource: Closeable) -> None:
        """Makes `resource` the one `close()` shuts; closes it at once if already closed."""
        with self._lock:
            self._resource = resource
            stopped = self._stopped.is_set()
        if stopped:
            _quietly_close(resource)

    def wait(self, seconds: float) -> bool:
        """Sleeps up to `seconds`; True when woken early by `close()`."""
        return self._stopped.wait(seconds)

    def close(self) -> None:
        self._stopped.set()
        with self._lock:
            resource, self._resource = self._resource, None
        if resource is not None:
            _quietly_close(resource)

    def __next__(self) -> T_co:
        if self._stopped.is_set():
            raise StopIteration
        return next(self._items)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _quietly_close(resource: Closeable) -> None:
    try:
        resource.close()
    except Exception:
        # Closing a stream the engine already closed raises on some transports; there is
        # nothing left to release then.
        return


def split_lines(chunks: Iterator[bytes]) -> Iterator[str]:
    """Text lines (without their newline) from byte chunks cut anywhere."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line.removesuffix(b"\r").decode("utf-8", errors="replace")
    if pending:
        yield pending.removesuffix(b"\r").decode("utf-8", errors="replace")
