"""An in-process FleetService that keeps deployments in memory, for SDK and CLI tests.

It is a real servicer on the generated base class, served by a real gRPC server (a unix
socket, or localhost TCP with mutual TLS): errors, deadlines and metadata cross the wire
as they do with ozwald-orchestrator. Placement is deliberately simple (round robin over
the seeded READY hosts); the tests here are about the client and the CLI, not placement.
"""

from __future__ import annotations

import datetime
import shutil
import tempfile
import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from ozwald.common.v1.error_reason_pb2 import (
    ERROR_REASON_DEPLOYMENT_INVALID,
    ERROR_REASON_DEPLOYMENT_NOT_FOUND,
)
from ozwald.orchestrator.v1 import deployment_pb2, fleet_service_pb2_grpc, placement_pb2
from ozwald.orchestrator.v1 import fleet_service_pb2 as pb
from ozwald.orchestrator.v1 import fleet_state_pb2 as FS

from ozwald_sdk import rpc_status
from ozwald_sdk.metadata import CORRELATION_ID_KEY
from ozwald_sdk.testing import Failure, ServerTls

NO_HOST_REASON = "no host has joined the fleet"


@dataclass(frozen=True)
class FleetCall:
    method: str
    correlation_id: str | None
    time_remaining: float | None
    request: Any


def stamp(moment: datetime.datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(moment)
    return out


class FleetFake(fleet_service_pb2_grpc.FleetServiceServicer):
    """Deployments, instances, hosts and events in memory.

    `break_watch_after`: every WatchEvents stream fails with UNAVAILABLE (no details,
    as when a connection drops) after sending that many events.
    """

    def __init__(self, *, break_watch_after: int | None = None) -> None:
        self.break_watch_after = break_watch_after
        self.deployments: dict[str, deployment_pb2.Deployment] = {}
        self.instances: dict[str, FS.Instance] = {}
        self.hosts: list[FS.Host] = []
        self.drift: list[pb.DriftItem] = []
        self.events: list[FS.FleetEvent] = []
        self.desired_version = 0
        self.explanations: dict[str, pb.ExplainDeploymentResponse] = {}
        self._lock = threading.Condition()
        self._failures: list[Failure] = []
        self._calls: list[FleetCall] = []
        self._stopped = False

    # Scripting --------------------------------------------------------------------

    def fail_next(self, failure: Failure, *, times: int = 1) -> None:
        with self._lock:
            self._failures.extend([failure] * times)

    def calls_to(self, method: str) -> list[FleetCall]:
        with self._lock:
            return [c for c in self._calls if c.method == method]

    def add_host(self, host: FS.Host) -> None:
        with self._lock:
            self.hosts.append(host)

    def emit(self, kind: str, message: str, **fields: str) -> FS.FleetEvent:
        with self._lock:
            event = FS.FleetEvent(
                sequence=len(self.events) + 1,
                time=stamp(datetime.datetime.now(datetime.UTC)),
                kind=kind,
                message=message,
                **fields,
            )
            self.events.append(event)
            self._lock.notify_all()
            return event

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._lock.notify_all()

    # FleetService -----------------------------------------------------------------

    def PlanDeployments(
        self, request: pb.PlanDeploymentsRequest, context: grpc.ServicerContext
    ) -> pb.PlanDeploymentsResponse:
        self._arrive("PlanDeployments", request, context)
        self._check(request.deployments, context)
        with self._lock:
            plan = self._plan(request.deployments, request.realms)
        plan.desired_version = self.desired_version
        return pb.PlanDeploymentsResponse(plan=plan)

    def ApplyDeployments(
        self, request: pb.ApplyDeploymentsRequest, context: grpc.ServicerContext
    ) -> pb.ApplyDeploymentsResponse:
        self._arrive("ApplyDeployments", request, context)
        self._check(request.deployments, context)
        with self._lock:
            before = len(self.events)
            plan = self._plan(request.deployments, request.realms)
            changed = any(
                c.kind != placement_pb2.DEPLOYMENT_CHANGE_KIND_UNCHANGED for c in plan.changes
            )
            if changed:
                self.desired_version += 1
            now = stamp(datetime.datetime.now(datetime.UTC))
            for change in plan.changes:
                self._store(change, request.deployments, now)
        plan.desired_version = self.desired_version
        for change in plan.changes:
            if change.kind != placement_pb2.DEPLOYMENT_CHANGE_KIND_UNCHANGED:
                self.emit(
                    "deployment-applied",
                    f"{change.deployment} stored",
                    deployment=change.deployment,
                )
        return pb.ApplyDeploymentsResponse(plan=plan, event_sequence=before)

    def ListDeployments(
        self, request: pb.ListDeploymentsRequest, context: grpc.ServicerContext
    ) -> pb.ListDeploymentsResponse:
        self._arrive("ListDeployments", request, context)
        with self._lock:
            return pb.ListDeploymentsResponse(
                deployments=[self.deployments[k] for k in sorted(self.deployments)],
                instances=[self.instances[k] for k in sorted(self.instances)],
            )

    def GetDeployment(
        self, request: pb.GetDeploymentRequest, context: grpc.ServicerContext
    ) -> pb.GetDeploymentResponse:
        self._arrive("GetDeployment", request, context)
        deployment = self._known(request.name, context)
        with self._lock:
            own = [i for i in self.instances.values() if i.deployment == request.name]
        return pb.GetDeploymentResponse(
            deployment=deployment, instances=sorted(own, key=lambda i: i.ordinal)
        )

    def ListInstances(
        self, request: pb.ListInstancesRequest, context: grpc.ServicerContext
    ) -> pb.ListInstancesResponse:
        self._arrive("ListInstances", request, context)
        with self._lock:
            chosen = [
                self.instances[k]
                for k in sorted(self.instances)
                if request.deployment in ("", self.instances[k].deployment)
                and request.host_id in ("", self.instances[k].host_id)
            ]
        return pb.ListInstancesResponse(instances=chosen)

    def ListHosts(
        self, request: pb.ListHostsRequest, context: grpc.ServicerContext
    ) -> pb.ListHostsResponse:
        self._arrive("ListHosts", request, context)
        with self._lock:
            return pb.ListHostsResponse(hosts=list(self.hosts))

    def ExplainDeployment(
        self, request: pb.ExplainDeploymentRequest, context: grpc.ServicerContext
    ) -> pb.ExplainDeploymentResponse:
        self._arrive("ExplainDeployment", request, context)
        self._known(request.name, context)
        with self._lock:
            scripted = self.explanations.get(request.name)
            if scripted is not None:
                return scripted
            own = sorted(
                (i for i in self.instances.values() if i.deployment == request.name),
                key=lambda i: i.ordinal,
            )
        return pb.ExplainDeploymentResponse(
            strategy="binpack",
            instances=[
                placement_pb2.InstanceExplanation(
                    instance=i.id,
                    host_id=i.host_id,
                    summary=f"placed on {i.host_id}" if i.host_id else i.reason,
                )
                for i in own
            ],
        )

    def GetDrift(
        self, request: pb.GetDriftRequest, context: grpc.ServicerContext
    ) -> pb.GetDriftResponse:
        self._arrive("GetDrift", request, context)
        with self._lock:
            return pb.GetDriftResponse(items=list(self.drift))

    def WatchEvents(
        self, request: pb.WatchEventsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.WatchEventsResponse]:
        self._arrive("WatchEvents", request, context)
        gone = threading.Event()
        context.add_callback(gone.set)
        sent = 0
        cursor = request.after_sequence
        while not gone.is_set():
            with self._lock:
                ready = [e for e in self.events if e.sequence > cursor]
                if not ready:
                    if request.stored_only or self._stopped:
                        return
                    self._lock.wait(0.05)
                    continue
            for event in ready:
                if self.break_watch_after is not None and sent >= self.break_watch_after:
                    context.abort(
                        grpc.StatusCode.UNAVAILABLE, "fake orchestrator dropped the stream"
                    )
                sent += 1
                cursor = event.sequence
                yield pb.WatchEventsResponse(event=event)

    # Fleet operations: not modelled here. The tests of those commands subclass the fake
    # and override what they use; the rest answer UNIMPLEMENTED, as an older server would.

    def ScaleDeployment(
        self, request: pb.ScaleDeploymentRequest, context: grpc.ServicerContext
    ) -> pb.ScaleDeploymentResponse:
        self._arrive("ScaleDeployment", request, context)
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "the fake does not model ScaleDeployment")

    def GetRollout(
        self, request: pb.GetRolloutRequest, context: grpc.ServicerContext
    ) -> pb.GetRolloutResponse:
        self._arrive("GetRollout", request, context)
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "the fake does not model GetRollout")

    def PauseRollout(
        self, request: pb.PauseRolloutRequest, context: grpc.ServicerContext
    ) -> pb.PauseRolloutResponse:
        self._arrive("PauseRollout", request, context)
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "the fake does not model PauseRollout")

    def ResumeRollout(
        self, request: pb.ResumeRolloutRequest, context: grpc.ServicerContext
    ) -> pb.ResumeRolloutResponse:
        self._arrive("ResumeRollout", request, context)
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "the fake does not model ResumeRollout")

    def PromoteRollout(
        self, request: pb.PromoteRolloutRequest, context: grpc.ServicerContext
    ) -> pb.PromoteRolloutResponse:
        self._arrive("PromoteRollout", request, context)
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "the fake does not model PromoteRollout")

    def UndoRollout(
        self, request: pb.UndoRolloutRequest, context: grpc.ServicerContext
    ) -> pb.UndoRolloutResponse:
        self._arrive("UndoRollout", request, context)
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "the fake does not model UndoRollout")

    def CordonHost(
        self, request: pb.CordonHostRequest, context: grpc.ServicerContext
    ) -> pb.CordonHostResponse:
        self._arrive("CordonHost", request, context)
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "the fake does not model CordonHost")

    def UncordonHost(
        self, request: pb.UncordonHostRequest, context: grpc.ServicerContext
    ) -> pb.UncordonHostResponse:
        self._arrive("UncordonHost", request, context)
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "the fake does not model UncordonHost")

    def DrainHost(
        self, request: pb.DrainHostRequest, context: grpc.ServicerContext
    ) -> pb.DrainHostResponse:
        self._arrive("DrainHost", request, context)
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "the fake does not model DrainHost")

    # Internals --------------------------------------------------------------------

    def _arrive(self, method: str, request: Any, context: grpc.ServicerContext) -> None:
        correlation_id = dict(context.invocation_metadata()).get(CORRELATION_ID_KEY)
        with self._lock:
            self._calls.append(
                FleetCall(
                    method,
                    correlation_id if isinstance(correlation_id, str) else None,
                    context.time_remaining(),
                    request,
                )
            )
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            failure.abort(context)

    def _check(self, deployments: Any, context: grpc.ServicerContext) -> None:
        for deployment in deployments:
            if not deployment.candidates:
                rpc_status.abort(
                    context,
                    grpc.StatusCode.INVALID_ARGUMENT,
                    ERROR_REASON_DEPLOYMENT_INVALID,
                    f"deployment {deployment.name!r} has no candidate spec",
                    "resolve it from ozwald.yml with `ozwald apply -f FILE`",
                    deployment=deployment.name,
                )

    def _known(self, name: str, context: grpc.ServicerContext) -> deployment_pb2.Deployment:
        with self._lock:
            deployment = self.deployments.get(name)
        if deployment is None:
            rpc_status.abort(
                context,
                grpc.StatusCode.NOT_FOUND,
                ERROR_REASON_DEPLOYMENT_NOT_FOUND,
                f"no deployment named {name!r}",
                "`ozwald deployments` lists them",
                deployment=name,
            )
        return deployment

    def _plan(self, deployments: Any, realms: Any) -> placement_pb2.FleetPlan:
        wanted = {d.name: d for d in deployments}
        touched = set(realms) | {d.realm for d in deployments}
        plan = placement_pb2.FleetPlan()
        ready = [h.id for h in self.hosts if h.state == FS.HOST_STATE_READY]
        for name, deployment in wanted.items():
            stored = self.deployments.get(name)
            if stored is None:
                kind = placement_pb2.DEPLOYMENT_CHANGE_KIND_CREATE
            elif _same(stored, deployment):
                kind = placement_pb2.DEPLOYMENT_CHANGE_KIND_UNCHANGED
            else:
                kind = placement_pb2.DEPLOYMENT_CHANGE_KIND_UPDATE
            change = plan.changes.add(deployment=name, kind=kind)
            if kind == placement_pb2.DEPLOYMENT_CHANGE_KIND_UPDATE and stored is not None:
                change.changed_fields.extend(
                    f
                    for f in ("replicas", "candidates", "constraints")
                    if getattr(stored, f) != getattr(deployment, f)
                )
            for ordinal in range(deployment.replicas):
                host = ready[ordinal % len(ready)] if ready else ""
                change.instances.add(
                    instance=f"{name}-{ordinal}",
                    host_id=host,
                    variety=deployment.candidates[0].variety if host else "",
                    reason="" if host else NO_HOST_REASON,
                )
        for name, stored in sorted(self.deployments.items()):
            if name not in wanted and stored.realm in touched:
                plan.changes.add(deployment=name, kind=placement_pb2.DEPLOYMENT_CHANGE_KIND_DELETE)
        return plan

    def _store(
        self, change: placement_pb2.DeploymentChange, deployments: Any, now: Timestamp
    ) -> None:
        if change.kind == placement_pb2.DEPLOYMENT_CHANGE_KIND_DELETE:
            del self.deployments[change.deployment]
            for key in [k for k, i in self.instances.items() if i.deployment == change.deployment]:
                del self.instances[key]
            return
        if change.kind == placement_pb2.DEPLOYMENT_CHANGE_KIND_UNCHANGED:
            return
        deployment = deployment_pb2.Deployment()
        deployment.CopyFrom(next(d for d in deployments if d.name == change.deployment))
        previous = self.deployments.get(change.deployment)
        deployment.version = (previous.version if previous else 0) + 1
        deployment.updated_at.CopyFrom(now)
        self.deployments[deployment.name] = deployment
        for ordinal, placed in enumerate(change.instances):
            self.instances[placed.instance] = FS.Instance(
                id=placed.instance,
                deployment=deployment.name,
                ordinal=ordinal,
                host_id=placed.host_id,
                variety=placed.variety,
                deployment_version=deployment.version,
                state=FS.INSTANCE_STATE_ASSIGNED if placed.host_id else FS.INSTANCE_STATE_PENDING,
                reason=placed.reason,
                state_since=now,
            )


def _same(a: deployment_pb2.Deployment, b: deployment_pb2.Deployment) -> bool:
    return (a.replicas, list(a.candidates), a.constraints, a.realm, a.service) == (
        b.replicas,
        list(b.candidates),
        b.constraints,
        b.realm,
        b.service,
    )


@contextmanager
def serve_fleet(fake: FleetFake, *, tls: ServerTls | None = None) -> Iterator[str]:
    """Run `fake` on a real gRPC server; yields the address to dial (unix socket, or
    localhost TCP with mutual TLS when `tls` is given)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    fleet_service_pb2_grpc.add_FleetServiceServicer_to_server(fake, server)
    directory = Path(tempfile.mkdtemp(prefix="ozf-", dir="/tmp"))
    try:
        if tls is None:
            socket_path = directory / "orchestrator.sock"
            server.add_insecure_port(f"unix:{socket_path}")
            address = f"unix://{socket_path}"
        else:
            credentials = grpc.ssl_server_credentials(
                [(tls.key, tls.cert)], root_certificates=tls.client_ca, require_client_auth=True
            )
            address = f"localhost:{server.add_secure_port('localhost:0', credentials)}"
        server.start()
        try:
            yield address
        finally:
            fake.stop()
            server.stop(grace=None)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
