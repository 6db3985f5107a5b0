"""`FleetClient`: the client people and the CLI use to talk to the orchestrator.

It behaves like the agent's clients (ozwald_sdk.agent_client):

- every call has a deadline (the client's `timeout` unless the call gives its own)
  shared by all its retries;
- idempotent calls (all of FleetService's: ApplyDeployments stores a complete desired
  set, so sending it twice changes nothing) are retried on UNAVAILABLE and
  RESOURCE_EXHAUSTED with jittered exponential backoff; nothing else is retried;
- a missing unix socket fails at once with OrchestratorUnreachableError;
- every call carries the client's correlation id;
- the event watch resumes after UNAVAILABLE from the last sequence it saw, so no
  event is missed and none repeated;
- failures are `ozwald_sdk.errors.OzwaldError` subclasses, never grpc.RpcError.

The address is `unix:///path`, a bare path, or `host:port` with mutual TLS (an operator
certificate from `ozwald ca issue --role operator`); with none, $OZWALD_ORCHESTRATOR, then
the default socket (ozwald_sdk.paths.default_orchestrator_socket).
"""

from __future__ import annotations

import contextlib
import datetime
import time
from collections.abc import Callable, Generator, Iterable, Sequence
from typing import TypeVar

import grpc
from ozwald.orchestrator.v1 import deployment_pb2, fleet_state_pb2, placement_pb2, rollout_pb2
from ozwald.orchestrator.v1.fleet_service_pb2 import (
    ApplyDeploymentsRequest,
    ApplyDeploymentsResponse,
    CordonHostRequest,
    DrainHostRequest,
    DriftItem,
    ExplainDeploymentRequest,
    ExplainDeploymentResponse,
    GetDeploymentRequest,
    GetDeploymentResponse,
    GetDriftRequest,
    GetRolloutRequest,
    ListDeploymentsRequest,
    ListDeploymentsResponse,
    ListHostsRequest,
    ListInstancesRequest,
    PauseRolloutRequest,
    PlanDeploymentsRequest,
    PromoteRolloutRequest,
    ResumeRolloutRequest,
    ScaleDeploymentRequest,
    ScaleDeploymentResponse,
    UncordonHostRequest,
    UndoRolloutRequest,
    UndoRolloutResponse,
    WatchEventsRequest,
    WatchEventsResponse,
)

from ozwald_sdk.errors import OzwaldError
from ozwald_sdk.retry import DEFAULT_RETRY, RetryPolicy, call_with_retry, is_retryable
from ozwald_sdk.rpc.fleet_service import FleetServiceRpc
from ozwald_sdk.service_client import OrchestratorServiceClient
from ozwald_sdk.target import AgentTarget

DEFAULT_TIMEOUT = 10.0

T = TypeVar("T")


class FleetClient(OrchestratorServiceClient):
    """Blocking client for the orchestrator's FleetService; a context manager.

    `target` is an address, a resolved target (ozwald_sdk.target.resolve_orchestrator_target)
    or None for $OZWALD_ORCHESTRATOR or the default socket. Raises ConnectionConfigError
    for an address or TLS setting that cannot be used.
    """

    def __init__(
        self,
        target: str | AgentTarget | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        correlation_id: str | None = None,
    ) -> None:
        super().__init__(target, timeout=timeout, retry=retry, correlation_id=correlation_id)
        self._rpc = FleetServiceRpc(self._channel, self.target)
        self._closed = False

    def close(self) -> None:
        """Close the channel; calls in flight end with CANCELLED, a watch ends quietly."""
        self._closed = True
        super().close()

    # Desired state ------------------------------------------------------------------

    def plan_deployments(
        self,
        deployments: Sequence[deployment_pb2.Deployment],
        *,
        realms: Iterable[str] = (),
        timeout: float | None = None,
    ) -> placement_pb2.FleetPlan:
        """What `apply_deployments` would do with the same arguments; changes nothing."""
        request = PlanDeploymentsRequest(deployments=deployments, realms=realms)
        return self._within(
            lambda left: (
                self._rpc.plan_deployments(request, timeout=left, metadata=self._metadata).plan
            ),
            timeout,
        )

    def apply_deployments(
        self,
        deployments: Sequence[deployment_pb2.Deployment],
        *,
        realms: Iterable[str] = (),
        timeout: float | None = None,
    ) -> ApplyDeploymentsResponse:
        """Make `deployments` the complete desired set of their realms (and of `realms`).

        Raises DeploymentInvalidError (nothing stored) when the orchestrator refuses one.
        Instances no host can take now are stored PENDING, not refused. Safe to retry.
        """
        request = ApplyDeploymentsRequest(deployments=deployments, realms=realms)
        return self._within(
            lambda left: self._rpc.apply_deployments(
                request, timeout=left, metadata=self._metadata
            ),
            timeout,
        )

    def list_deployments(self, *, timeout: float | None = None) -> ListDeploymentsResponse:
        """Every stored deployment, with every instance."""
        request = ListDeploymentsRequest()
        return self._within(
            lambda left: self._rpc.list_deployments(request, timeout=left, metadata=self._metadata),
            timeout,
        )

    def get_deployment(self, name: str, *, timeout: float | None = None) -> GetDeploymentResponse:
        """One deployment and its instances; DeploymentNotFoundError when there is none."""
        request = GetDeploymentRequest(name=name)
        return self._within(
            lambda left: self._rpc.get_deployment(request, timeout=left, metadata=self._metadata),
            timeout,
        )

    def scale_deployment(
        self, name: str, replicas: int, *, timeout: float | None = None
    ) -> ScaleDeploymentResponse:
        """Give deployment `name` `replicas` instances: a new version of it that changes
        nothing else (no rollout); new instances are placed, the highest ordinals go first.
        0 keeps the deployment with nothing placed. DeploymentNotFoundError for an unknown
        name. Safe to retry: scaling to the count it has changes nothing."""
        request = ScaleDeploymentRequest(name=name, replicas=replicas)
        return self._within(
            lambda left: self._rpc.scale_deployment(request, timeout=left, metadata=self._metadata),
            timeout,
        )

    # Hosts --------------------------------------------------------------------------

    def cordon_host(self, host_id: str, *, timeout: float | None = None) -> fleet_state_pb2.Host:
        """Stop new placements on a host; what runs there stays. HostNotFoundError for an
        unknown host."""
        request = CordonHostRequest(host_id=host_id)
        return self._within(
            lambda left: self._rpc.cordon_host(request, timeout=left, metadata=self._metadata).host,
            timeout,
        )

    def uncordon_host(self, host_id: str, *, timeout: float | None = None) -> fleet_state_pb2.Host:
        """Let a host take new placements again, cancelling its drain if one runs.
        HostNotFoundError for an unknown host."""
        request = UncordonHostRequest(host_id=host_id)
        return self._within(
            lambda left: (
                self._rpc.uncordon_host(request, timeout=left, metadata=self._metadata).host
            ),
            timeout,
        )

    # Rollouts -----------------------------------------------------------------------

    def get_rollout(self, deployment: str, *, timeout: float | None = None) -> rollout_pb2.Rollout:
        """The deployment's current rollout, or its latest. RolloutNotFoundError when its
        spec never changed; DeploymentNotFoundError for an unknown deployment."""
        request = GetRolloutRequest(deployment=deployment)
        return self._within(
            lambda left: (
                self._rpc.get_rollout(request, timeout=left, metadata=self._metadata).rollout
            ),
            timeout,
        )

    def pause_rollout(
        self, deployment: str, *, timeout: float | None = None
    ) -> rollout_pb2.Rollout:
        """Stop the running rollout from replacing more instances (those replaced stay).
        RolloutNotActiveError when it has ended. Safe to retry."""
        request = PauseRolloutRequest(deployment=deployment)
        return self._within(
            lambda left: (
                self._rpc.pause_rollout(request, timeout=left, metadata=self._metadata).rollout
            ),
            timeout,
        )

    def resume_rollout(
        self, deployment: str, *, timeout: float | None = None
    ) -> rollout_pb2.Rollout:
        """Continue a paused rollout; its progress deadline starts again.
        RolloutNotActiveError when it is not paused. Safe to retry."""
        request = ResumeRolloutRequest(deployment=deployment)
        return self._within(
            lambda left: (
                self._rpc.resume_rollout(request, timeout=left, metadata=self._metadata).rollout
            ),
            timeout,
        )

    def promote_rollout(
        self, deployment: str, *, timeout: float | None = None
    ) -> rollout_pb2.Rollout:
        """Let a rollout whose canaries are healthy replace the rest.
        RolloutNotActiveError when none waits for promotion. Safe to retry."""
        request = PromoteRolloutRequest(deployment=deployment)
        return self._within(
            lambda left: (
                self._rpc.promote_rollout(request, timeout=left, metadata=self._metadata).rollout
            ),
            timeout,
        )

    def undo_rollout(
        self, deployment: str, to_version: int = 0, *, timeout: float | None = None
    ) -> UndoRolloutResponse:
        """Make an earlier version's spec current again (a new version) and roll it out;
        `to_version` 0 goes back to what the latest rollout replaced. Not retried: each
        call that changes something stores a new version."""
        request = UndoRolloutRequest(deployment=deployment, to_version=to_version)

        def attempt(seconds_left: float) -> UndoRolloutResponse:
            self.target.check_socket()
            return self._rpc.undo_rollout(request, timeout=seconds_left, metadata=self._metadata)

        return call_with_retry(
            attempt,
            policy=self.retry,
            timeout=self.timeout if timeout is None else timeout,
            idempotent=False,
        )

    def drain_host(
        self, host_id: str, deadline_s: float | None = None, *, timeout: float | None = None
    ) -> fleet_state_pb2.Host:
        """Cordon a host and move its instances elsewhere, no deployment losing more than
        its max_parallel at once; what is left at the deadline (default 10 min) moves at
        once. Returns at once with the host and its drain; follow it with list_hosts or
        watch_events. HostNotFoundError for an unknown host. Safe to retry: a running
        drain is answered unchanged."""
        request = DrainHostRequest(host_id=host_id)
        if deadline_s is not None:
            request.deadline.FromTimedelta(datetime.timedelta(seconds=deadline_s))
        return self._within(
            lambda left: self._rpc.drain_host(request, timeout=left, metadata=self._metadata).host,
            timeout,
        )

    # Observed state -----------------------------------------------------------------

    def list_instances(
        self, *, deployment: str = "", host_id: str = "", timeout: float | None = None
    ) -> list[fleet_state_pb2.Instance]:
        """Instances, of one deployment and/or on one host when given."""
        request = ListInstancesRequest(deployment=deployment, host_id=host_id)
        return self._within(
            lambda left: list(
                self._rpc.list_instances(request, timeout=left, metadata=self._metadata).instances
            ),
            timeout,
        )

    def list_hosts(self, *, timeout: float | None = None) -> list[fleet_state_pb2.Host]:
        """Every host that ever joined, with its state."""
        request = ListHostsRequest()
        return self._within(
            lambda left: list(
                self._rpc.list_hosts(request, timeout=left, metadata=self._metadata).hosts
            ),
            timeout,
        )

    def explain_deployment(
        self, name: str, *, timeout: float | None = None
    ) -> ExplainDeploymentResponse:
        """For each instance: where it is placed and why, or why no host can take it."""
        request = ExplainDeploymentRequest(name=name)
        return self._within(
            lambda left: self._rpc.explain_deployment(
                request, timeout=left, metadata=self._metadata
            ),
            timeout,
        )

    def get_drift(self, *, timeout: float | None = None) -> list[DriftItem]:
        """Where what the agents report differs from what they are assigned, now."""
        request = GetDriftRequest()
        return self._within(
            lambda left: list(
                self._rpc.get_drift(request, timeout=left, metadata=self._metadata).items
            ),
            timeout,
        )

    def watch_events(
        self, *, after_sequence: int = 0, follow: bool = True, timeout: float | None = None
    ) -> Generator[fleet_state_pb2.FleetEvent, None, None]:
        """Fleet events after `after_sequence`: the stored ones, then (with `follow`) live
        ones until you stop iterating, the client closes or `timeout` passes.

        A stream that breaks with UNAVAILABLE (the orchestrator restarted, a connection
        dropped) is opened again after a jittered backoff from the last sequence seen;
        `retry.max_attempts` failures in a row without an event in between raise the
        last error.
        """
        cursor = after_sequence
        deadline = None if timeout is None else time.monotonic() + timeout
        failures = 0
        while True:
            seconds_left = None if deadline is None else deadline - time.monotonic()
            request = WatchEventsRequest(after_sequence=cursor, stored_only=not follow)
            try:
                self.target.check_socket()
                stream = self._rpc.watch_events(
                    request, timeout=seconds_left, metadata=self._metadata
                )
                with contextlib.closing(stream):
                    for response in stream:
                        failures = 0
                        cursor = _sequence(response, cursor)
                        yield response.event
                return
            except OzwaldError as e:
                if self._watch_should_end(e, seconds_left):
                    return
                failures += 1
                if not is_retryable(e) or failures >= self.retry.max_attempts:
                    raise
                pause = self.retry.delay(failures)
                if deadline is not None and time.monotonic() + pause >= deadline:
                    return
            time.sleep(pause)

    def _watch_should_end(self, error: OzwaldError, seconds_left: float | None) -> bool:
        """Whether a failed stream ends the watch quietly: its own deadline, or close()."""
        deadline_passed = (
            error.code == grpc.StatusCode.DEADLINE_EXCEEDED
            and seconds_left is not None
            and not error.reason
        )
        return deadline_passed or (self._closed and error.code == grpc.StatusCode.CANCELLED)

    def _within(self, attempt: Callable[[float], T], timeout: float | None) -> T:
        """`attempt(seconds_left)` within this call's timeout (the client's when None),
        retried when it fails in a retryable way: every FleetService call is idempotent."""

        def checked(seconds_left: float) -> T:
            self.target.check_socket()
            return attempt(seconds_left)

        return call_with_retry(
            checked,
            policy=self.retry,
            timeout=self.timeout if timeout is None else timeout,
            idempotent=True,
        )


def _sequence(response: WatchEventsResponse, cursor: int) -> int:
    return max(cursor, response.event.sequence)
