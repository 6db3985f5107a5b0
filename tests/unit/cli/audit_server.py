"""The orchestrator's real AuditService (grpc.aio, a real AuditLog on SQLite) served from a
background event loop, for SDK and CLI tests that call it with the blocking clients.

`serve_audit` also serves a `WhoAmI` method that answers `caller(context)`, so tests see
the actor the audit log would record for a call over the same wire.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
from ozwald.orchestrator.v1 import audit_service_pb2_grpc

from ozwald_orchestrator.audit import AuditLog, AuditServicer, caller
from ozwald_sdk.testing import ServerTls

WHO_AM_I = "/ozwald.test.v1.Identity/WhoAmI"


class _Loop:
    """An asyncio loop on its own thread; `run` executes a coroutine there and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout=30)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


async def _who_am_i(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    return caller(context).encode()


@contextmanager
def serve_audit(log: AuditLog, *, tls: ServerTls | None = None) -> Iterator[str]:
    """Serve `log` (require_operator when `tls` is given, as on the orchestrator's TCP
    listener); yields the address to dial."""
    loop = _Loop()
    directory = Path(tempfile.mkdtemp(prefix="oza-", dir="/tmp"))

    async def start() -> tuple[grpc.aio.Server, str]:
        server = grpc.aio.server()
        audit_service_pb2_grpc.add_AuditServiceServicer_to_server(
            AuditServicer(log, require_operator=tls is not None), server
        )
        identity: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(
            _who_am_i, request_deserializer=None, response_serializer=None
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("ozwald.test.v1.Identity", {"WhoAmI": identity}),)
        )
        if tls is None:
            socket_path = directory / "orchestrator.sock"
            server.add_insecure_port(f"unix:{socket_path}")
            address = f"unix://{socket_path}"
        else:
            credentials = grpc.ssl_server_credentials(
                [(tls.key, tls.cert)], root_certificates=tls.client_ca, require_client_auth=True
            )
            address = f"localhost:{server.add_secure_port('localhost:0', credentials)}"
        await server.start()
        return server, address

    try:
        server, address = loop.run(start())
        try:
            yield address
        finally:
            loop.run(server.stop(grace=None))
    finally:
        loop.close()
        shutil.rmtree(directory, ignore_errors=True)
