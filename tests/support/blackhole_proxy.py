"""A TCP proxy on loopback that can stop passing bytes without closing anything: a
network partition as the two ends see it (no FIN, no RST, just silence)."""

from __future__ import annotations

import contextlib
import select
import socket
import threading


class BlackholeProxy:
    """Forwards 127.0.0.1:`port` to `target`; `partition()` holds every byte from then on
    in both directions, `heal()` lets them through again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._open = threading.Event()
        self._open.set()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = [self._listener]
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="blackhole-accept", daemon=True).start()

    def partition(self) -> None:
        self._open.clear()

    def heal(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._closed.set()
        self._open.set()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
                upstream = socket.create_connection(self._target)
            except OSError:
                return
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(source, sink), name="blackhole-pump", daemon=True
                ).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        # close() closes the sockets under a pump: select then raises ValueError.
        with contextlib.suppress(OSError, ValueError):
            while not self._closed.is_set():
                # While partitioned, bytes wait in the kernel's buffers: nobody reads them.
                self._open.wait()
                ready, _, _ = select.select([source], [], [], 0.05)
                if not ready or not self._open.is_set():
                    continue
                data = source.recv(65536)
                if not data:
                    sink.shutdown(socket.SHUT_WR)
                    return
                sink.sendall(data)
