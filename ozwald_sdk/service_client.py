"""`ServiceClient`: what the blocking clients of the agent's smaller gRPC services share.

`VaultClient` and `VolumeClient` are thin: they add their service's stub and its calls.
The target, the deadline and retry policy, the correlation id sent with every call, the
channel's life, and the socket check before each attempt live here once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Self, TypeVar

from ozwald_sdk.channel import open_channel
from ozwald_sdk.metadata import CORRELATION_ID_KEY, client_uid_metadata
from ozwald_sdk.retry import RetryPolicy, call_with_retry
from ozwald_sdk.target import AgentTarget, resolve_orchestrator_target, resolve_target

T = TypeVar("T")


class ServiceClient:
    """A context manager holding one channel to the agent."""

    def __init__(
        self,
        target: str | AgentTarget | None,
        *,
        timeout: float,
        retry: RetryPolicy,
        correlation_id: str | None,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        self.target = target if isinstance(target, AgentTarget) else resolve_target(target)
        self.timeout = timeout
        self.retry = retry
        self.correlation_id = correlation_id or uuid.uuid4().hex
        self._metadata = ((CORRELATION_ID_KEY, self.correlation_id), *metadata)
        self._channel = open_channel(self.target)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _call(self, attempt: Callable[[float], T], *, idempotent: bool = False) -> T:
        """`attempt(seconds_left)` within the client's deadline; retried only when
        `idempotent` (ozwald_sdk.retry)."""

        def checked(seconds_left: float) -> T:
            self.target.check_socket()
            return attempt(seconds_left)

        return call_with_retry(
            checked, policy=self.retry, timeout=self.timeout, idempotent=idempotent
        )


class OrchestratorServiceClient(ServiceClient):
    """A ServiceClient for one of the orchestrator's services. `target` defaults to
    $OZWALD_ORCHESTRATOR or the orchestrator's default socket; every call carries the
    caller's uid, by which the audit log names local operators ("local:uid=N")."""

    def __init__(
        self,
        target: str | AgentTarget | None,
        *,
        timeout: float,
        retry: RetryPolicy,
        correlation_id: str | None,
    ) -> None:
        super().__init__(
            target if isinstance(target, AgentTarget) else resolve_orchestrator_target(target),
            timeout=timeout,
            retry=retry,
            correlation_id=correlation_id,
            metadata=client_uid_metadata(),
        )
